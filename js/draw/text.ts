// Fonts and text colours of what the views paint, matching the widget's stylesheet.

const UI_FAMILY = "system-ui, -apple-system, 'Segoe UI', sans-serif";

/** Labels, numbers and head chips. */
export const UI_FONT = `11px ${UI_FAMILY}`;
/** The caption above a saved picture. */
export const CAPTION_FONT = `600 13px ${UI_FAMILY}`;
/** Tokens in pictures, in the page's token font. */
export const TOKEN_FONT = "12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";

/** Ink of text on each theme, as the widget's stylesheet has it. */
export const ink = (dark: boolean) => ({ text: dark ? "#e6e8eb" : "#1f2328", muted: dark ? "#8b939e" : "#6e7781" });
