// The pieces every picture shares, painted the way the page shows them: tokens in their
// boxes and the row of head chips.

import { fitText, textWidth } from "./canvas";
import { css, headColor, textOn } from "./colors";
import type { Painter } from "./painter";
import { TOKEN_FONT, UI_FONT, ink } from "./text";

const TOKEN_PAD = 6;
/** The widest token box, border and padding included: `.aw-tok`'s max-width of 14em at 12px in styles.css. */
export const TOKEN_MAX_WIDTH = 168;

/** Width of a column that holds every token (bold, as a pinned one is drawn), with padding; longer ones are cut. */
export function tokenColumnWidth(tokens: string[]): number {
  const widest = Math.ceil(Math.max(0, ...tokens.map((t) => textWidth(t, `bold ${TOKEN_FONT}`)))) + 2 * TOKEN_PAD + 2;
  return Math.min(TOKEN_MAX_WIDTH, widest);
}

export interface TokenStyle {
  align: "left" | "right";
  special: boolean;
  pinned: boolean;
  /** Background colour (attention tint), or null. */
  tint: string | null;
  dark: boolean;
}

/** One token in its box, as the page draws it: tinted background, outlined and bold when pinned, cut with "…" when too long. */
export function paintToken(g: Painter, text: string, x: number, y: number, width: number, height: number, style: TokenStyle): void {
  const colors = ink(style.dark);
  if (style.tint) {
    g.fillStyle = style.tint;
    g.fillRect(x, y + 1, width, height - 2);
  }
  if (style.pinned) {
    g.strokeStyle = colors.text;
    g.lineWidth = 1;
    g.strokeRect(x + 0.5, y + 1.5, width - 1, height - 3);
  }
  const font = style.pinned ? `bold ${TOKEN_FONT}` : TOKEN_FONT;
  g.font = font;
  g.fillStyle = style.special ? colors.muted : colors.text;
  g.textAlign = style.align;
  g.textBaseline = "middle";
  g.fillText(fitText(text, font, width - 2 * TOKEN_PAD - 2), style.align === "right" ? x + width - TOKEN_PAD : x + TOKEN_PAD, y + height / 2);
}

const CHIP = { width: 24, height: 16, gap: 4 };
export const CHIP_ROW_HEIGHT = CHIP.height + 10;

/** The shown heads as coloured chips with their numbers, the focused one ringed. */
export function paintHeadChips(g: Painter, heads: number[], count: number, focused: number, dark: boolean): void {
  g.font = UI_FONT;
  g.textAlign = "center";
  g.textBaseline = "middle";
  heads.forEach((head, i) => {
    const x = i * (CHIP.width + CHIP.gap) + 1;
    const color = headColor(head, count, dark);
    g.fillStyle = css(color);
    g.fillRect(x, 1, CHIP.width, CHIP.height);
    if (head === focused) {
      g.strokeStyle = ink(dark).text;
      g.lineWidth = 1.5;
      g.strokeRect(x - 1, 0, CHIP.width + 2, CHIP.height + 2);
    }
    g.fillStyle = textOn(color);
    g.fillText(String(head), x + CHIP.width / 2, 1 + CHIP.height / 2);
  });
}

export function headChipsWidth(heads: number): number {
  return heads * (CHIP.width + CHIP.gap) + 2;
}
