// Which key rows a saved picture of the neuron view holds. Every row of a 4096-key head would make a picture about
// 74,000 px tall: more than a canvas may be (16,384 px a side), and unreadable once shrunk to fit. Past PICTURE_KEYS
// keys the picture keeps those that take the most weight, in key order, marks where others were left out, and says
// what they take together, so it is honest about what it does not show.

/** At most this many key rows in a picture: 64 rows of 18 px, about the height of a page. */
export const PICTURE_KEYS = 64;

/** A line of the picture: a key's row, or a run of `skipped` keys left out between the rows shown. */
export type PictureLine = { key: number } | { skipped: number };

export interface PictureRows {
  lines: PictureLine[];
  /** Keys left out, and the softmax weight they take together. */
  leftOut: number;
  leftOutWeight: number;
}

/** The key rows of a picture: all of them up to `limit`, else the `limit` with the largest weights (the earlier key
 * on a tie), in key order, with the runs left out between them. */
export function pictureRows(softmax: ArrayLike<number>, limit = PICTURE_KEYS): PictureRows {
  const n = softmax.length;
  const byWeight = Array.from({ length: n }, (_, k) => k).sort((a, b) => softmax[b] - softmax[a] || a - b);
  const kept = n <= limit ? byWeight : byWeight.slice(0, limit);
  kept.sort((a, b) => a - b);
  const lines: PictureLine[] = [];
  let next = 0;
  for (const key of [...kept, n]) {
    if (key > next) lines.push({ skipped: key - next });
    if (key < n) lines.push({ key });
    next = key + 1;
  }
  let leftOutWeight = 0;
  for (const k of byWeight.slice(kept.length)) leftOutWeight += softmax[k];
  return { lines, leftOut: n - kept.length, leftOutWeight };
}
