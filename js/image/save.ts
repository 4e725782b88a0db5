// Saving the picture of the current view: as a download from the toolbar, or as the answer
// to Python's `widget.save_image(...)` (docs/data-contract.md, "Images").

import "./save.css";

import { KIND, isImageRequest, type Binary, type ImageFormat, type WidgetModel } from "../contract";
import type { Selection } from "../selection";
import type { Snapshot } from "../views/view";
import { caption, fileName, framed, toPng, toSvg } from "./snapshot";

export interface SavedImage {
  format: ImageFormat;
  width: number;
  height: number;
  fileName: string;
  blob: Blob;
}

/** The current view's picture in `format`; rejects with a message a user can act on. */
export async function makeImage(
  selection: Selection,
  pending: Snapshot | null | Promise<Snapshot | null>,
  dark: boolean,
  format: ImageFormat,
  scale?: number,
): Promise<SavedImage> {
  const snapshot = await pending;
  if (!snapshot) {
    const why = "its data is still loading, or it has none to show";
    throw new Error(`the ${selection.view} view has nothing drawn yet (${why}); try again once it shows`);
  }
  if (!(snapshot.width >= 1 && snapshot.height >= 1)) {
    // A 0 × 0 file is no picture: say so instead of answering with one.
    throw new Error(`the ${selection.view} view drew an empty picture (${snapshot.width} × ${snapshot.height} px); try again once it shows`);
  }
  const picture = framed(snapshot, caption(selection), dark);
  const blob = format === "svg" ? new Blob([toSvg(picture, caption(selection))], { type: "image/svg+xml" }) : await toPng(picture, scale);
  return { format, width: picture.width, height: picture.height, fileName: fileName(selection, format), blob };
}

/** The bytes of a blob, through FileReader, which every browser (and jsdom) has. */
export function blobBytes(blob: Blob): Promise<ArrayBuffer> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result as ArrayBuffer);
    reader.onerror = () => reject(new Error(`could not read the image: ${reader.error?.message}`));
    reader.readAsArrayBuffer(blob);
  });
}

/** Save a blob as a file, through a temporary <a download>: no server, so it works in exported pages too. */
export function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.style.display = "none";
  document.body.append(link);
  link.click();
  link.remove();
  // The download has started by the time the click returns; the URL is not needed after it.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * Answer Python's image requests with the picture this rendering shows. Every displayed view of
 * the widget answers; Python keeps the first answer. Returns the cleanup.
 */
export function answerImageRequests(model: WidgetModel, picture: (format: ImageFormat, scale?: number) => Promise<SavedImage>): () => void {
  const onMessage = (content: unknown, _buffers: Binary[]) => {
    if (!isImageRequest(content)) return;
    const { id, format, scale } = content;
    // Any failure still answers, so Python reports it instead of waiting for a timeout.
    picture(format, scale)
      .then(async (image) => ({ image, bytes: await blobBytes(image.blob) }))
      .then(
        ({ image, bytes }) =>
          model.send({ kind: KIND.image, id, format, width: image.width, height: image.height, file_name: image.fileName }, undefined, [bytes]),
        (error: Error) => model.send({ kind: KIND.image, id, format, error: error.message }),
      );
  };
  model.on("msg:custom", onMessage);
  return () => model.off("msg:custom", onMessage);
}
