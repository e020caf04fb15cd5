import { createSignal, createUniqueId } from 'solid-js';

async function copyText(text: string, input: HTMLInputElement | undefined): Promise<boolean> {
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // Not allowed here (no secure context, or denied): fall back to selecting the text.
  }
  if (!input) return false;
  input.focus();
  input.select();
  try {
    return document.execCommand('copy');
  } catch {
    return false;
  }
}

/** A read-only value with a Copy button (clipboard API, or select-and-copy where it is missing). */
export function CopyField(props: { label: string; value: string }) {
  const id = createUniqueId();
  const [status, setStatus] = createSignal('');
  let input: HTMLInputElement | undefined;

  return (
    <div class="field copy-field">
      <label for={id}>{props.label}</label>
      <div class="copy-row">
        <input
          ref={input}
          id={id}
          type="text"
          readOnly
          value={props.value}
          onFocus={(event) => event.currentTarget.select()}
        />
        <button
          type="button"
          class="button secondary"
          onClick={async () => {
            const copied = await copyText(props.value, input);
            setStatus(copied ? 'Copied to the clipboard.' : 'Select the token and copy it.');
          }}
        >
          Copy
        </button>
      </div>
      <span class="muted" role="status">
        {status()}
      </span>
    </div>
  );
}
