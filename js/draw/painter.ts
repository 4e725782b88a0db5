// What a picture is painted through: a real canvas context on screen and for PNGs, the
// SvgPainter (js/image/svg.ts) for SVGs.

/** The part of CanvasRenderingContext2D a view's picture may use. */
export type Painter = Pick<
  CanvasRenderingContext2D,
  | "strokeStyle"
  | "fillStyle"
  | "lineWidth"
  | "lineCap"
  | "globalAlpha"
  | "font"
  | "textAlign"
  | "textBaseline"
  | "imageSmoothingEnabled"
  | "save"
  | "restore"
  | "translate"
  | "rotate"
  | "beginPath"
  | "moveTo"
  | "lineTo"
  | "stroke"
  | "fillRect"
  | "strokeRect"
  | "clearRect"
  | "fillText"
  | "drawImage"
>;
