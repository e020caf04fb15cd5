import { createUniqueId, For } from 'solid-js';
import type { ArchiveFormat } from '../graphql/documents';

export const ARCHIVE_FORMATS: readonly ArchiveFormat[] = ['ZIP', 'TAR_GZ'];

export const ARCHIVE_FORMAT_WORDS: Record<ArchiveFormat, string> = {
  ZIP: 'ZIP',
  TAR_GZ: 'TAR.GZ',
};

export interface ArchiveFormatChoiceProps {
  value: ArchiveFormat;
  onChange: (format: ArchiveFormat) => void;
  legend?: string;
}

/**
 * ZIP or TAR.GZ for the site's files (DESIGN.md §11). The database alone is always a
 * gzip-compressed .sql file, whichever is chosen.
 */
export function ArchiveFormatChoice(props: ArchiveFormatChoiceProps) {
  const name = createUniqueId();
  const hint = createUniqueId();
  return (
    <fieldset class="scope-choice format-choice" aria-describedby={hint}>
      <legend>{props.legend ?? 'Archive format'}</legend>
      <For each={ARCHIVE_FORMATS}>
        {(format) => (
          <label class="radio">
            <input
              type="radio"
              name={name}
              value={format}
              checked={props.value === format}
              onChange={() => props.onChange(format)}
            />
            <span>{ARCHIVE_FORMAT_WORDS[format]}</span>
          </label>
        )}
      </For>
      <span id={hint} class="muted format-hint">
        ZIP opens on any computer; TAR.GZ is the usual choice on Linux servers.
      </span>
    </fieldset>
  );
}
