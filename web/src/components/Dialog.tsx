import { createUniqueId, type JSX, onCleanup, onMount } from 'solid-js';
import { Portal } from 'solid-js/web';

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

export interface DialogProps {
  title: string;
  onClose: () => void;
  /** Where focus goes when the dialog closes; by default the element focused before it opened. */
  returnFocusTo?: HTMLElement | undefined;
  /** The element to focus first; by default the first focusable one. */
  initialFocus?: () => HTMLElement | undefined;
  children: JSX.Element;
}

/** A modal dialog: labelled by its title, focus kept inside, Escape closes, focus returned. */
export function Dialog(props: DialogProps) {
  const titleId = createUniqueId();
  let panel: HTMLDivElement | undefined;
  // Read once: by cleanup time the owner's props may already be gone.
  const returnTarget =
    props.returnFocusTo ??
    (document.activeElement instanceof HTMLElement ? document.activeElement : undefined);

  const focusables = () =>
    panel ? Array.from(panel.querySelectorAll<HTMLElement>(FOCUSABLE)) : [];

  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      event.stopPropagation();
      props.onClose();
      return;
    }
    if (event.key !== 'Tab') return;
    const items = focusables();
    const first = items[0];
    const last = items[items.length - 1];
    if (!first || !last) {
      event.preventDefault();
      panel?.focus();
      return;
    }
    const active = document.activeElement;
    if (event.shiftKey && (active === first || !panel?.contains(active))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (active === last || !panel?.contains(active))) {
      event.preventDefault();
      first.focus();
    }
  };

  // Focus that escapes (a click on the backdrop, a screen reader jump) is brought back.
  const onFocusIn = (event: FocusEvent) => {
    if (panel && event.target instanceof Node && !panel.contains(event.target)) {
      (focusables()[0] ?? panel).focus();
    }
  };

  // Everything outside the dialog is inert while it is open: no clicks, no focus, hidden from
  // screen readers (the dialog is rendered in its own container at the end of <body>).
  let inerted: HTMLElement[] = [];

  onMount(() => {
    inerted = Array.from(document.body.children).filter(
      (el): el is HTMLElement =>
        el instanceof HTMLElement && !el.contains(panel ?? null) && !el.hasAttribute('inert'),
    );
    for (const el of inerted) el.setAttribute('inert', '');
    document.addEventListener('focusin', onFocusIn);
    const target = props.initialFocus?.() ?? focusables()[0] ?? panel;
    target?.focus();
  });

  onCleanup(() => {
    for (const el of inerted) el.removeAttribute('inert');
    document.removeEventListener('focusin', onFocusIn);
    if (returnTarget?.isConnected) returnTarget.focus();
  });

  return (
    <Portal>
      <div class="dialog-backdrop">
        <div
          ref={panel}
          class="dialog"
          role="dialog"
          aria-modal="true"
          aria-labelledby={titleId}
          tabIndex={-1}
          onKeyDown={onKeyDown}
        >
          <h2 id={titleId} class="dialog-title">
            {props.title}
          </h2>
          {props.children}
        </div>
      </div>
    </Portal>
  );
}
