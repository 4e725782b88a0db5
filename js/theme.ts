// Light or dark: the `theme` trait, or with "auto" whatever the host page shows.

import type { Theme } from "./contract";

/** The host's own theme markers, most specific first; null when the page says nothing. */
function hostIsDark(): boolean | null {
  const body = document.body;
  if (!body) return null;
  const jupyterLight = body.getAttribute("data-jp-theme-light");
  if (jupyterLight === "false") return true;
  if (jupyterLight === "true") return false;
  if (body.classList.contains("vscode-dark")) return true;
  if (body.classList.contains("vscode-high-contrast") && !body.classList.contains("vscode-high-contrast-light")) {
    return true;
  }
  if (body.classList.contains("vscode-light") || body.classList.contains("vscode-high-contrast-light")) return false;
  return null;
}

function prefersDark(): MediaQueryList | null {
  return typeof matchMedia === "function" ? matchMedia("(prefers-color-scheme: dark)") : null;
}

export function isDark(theme: Theme): boolean {
  if (theme !== "auto") return theme === "dark";
  return hostIsDark() ?? prefersDark()?.matches ?? false;
}

/** Call `onHostChange` when the host switches theme (JupyterLab and VS Code restyle the body). */
export function watchHostTheme(onHostChange: () => void): () => void {
  const cleanups: (() => void)[] = [];
  if (typeof MutationObserver !== "undefined" && document.body) {
    const observer = new MutationObserver(onHostChange);
    observer.observe(document.body, { attributes: true, attributeFilter: ["class", "data-jp-theme-light"] });
    cleanups.push(() => observer.disconnect());
  }
  const query = prefersDark();
  if (query?.addEventListener) {
    query.addEventListener("change", onHostChange);
    cleanups.push(() => query.removeEventListener("change", onHostChange));
  }
  return () => cleanups.forEach((cleanup) => cleanup());
}
