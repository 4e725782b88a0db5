// jsdom has no canvas. Give every canvas a recording 2D context instead, so the drawing
// code runs in tests and tests can ask what it drew.

export type DrawCall = [string, ...unknown[]];
export const drawCalls = new WeakMap<HTMLCanvasElement, DrawCall[]>();
const contexts = new WeakMap<HTMLCanvasElement, unknown>();

function recordingContext(canvas: HTMLCanvasElement): unknown {
  const calls: DrawCall[] = [];
  drawCalls.set(canvas, calls);
  const fields: Record<string | symbol, unknown> = {
    canvas,
    createImageData: (width: number, height: number) => ({ width, height, data: new Uint8ClampedArray(width * height * 4) }),
    measureText: (text: string) => ({ width: text.length * 6 }),
  };
  return new Proxy(fields, {
    get(target, name) {
      const own = target[name];
      return (...args: unknown[]) => {
        calls.push([String(name), ...args]);
        return typeof own === "function" ? own(...args) : undefined;
      };
    },
    set(target, name, value) {
      target[name] = value;
      calls.push([`set ${String(name)}`, value]);
      return true;
    },
  });
}

HTMLCanvasElement.prototype.getContext = function (this: HTMLCanvasElement) {
  // A canvas hands out one context for its life, as browsers do.
  if (!contexts.has(this)) contexts.set(this, recordingContext(this));
  return contexts.get(this);
} as unknown as HTMLCanvasElement["getContext"];
