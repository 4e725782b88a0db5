// Renders the widgets of an ipywidgets embed page the way VS Code's notebook renderer does:
// an HTMLManager from @jupyter-widgets/html-manager bundled locally (not fetched from a CDN),
// and third-party widget modules loaded from the Python environment's nbextensions folder,
// where pip installed anywidget's AMD build (share/jupyter/nbextensions/anywidget/index.js).
// ui-tests/test_html_manager.py bundles this file with esbuild; it is never part of the widget bundle.

import * as base from "@jupyter-widgets/base";
import { HTMLManager } from "@jupyter-widgets/html-manager";
import { renderWidgets } from "@jupyter-widgets/html-manager/lib/libembed";

/** Where the test serves the environment's share/jupyter/nbextensions folder. */
const NBEXTENSIONS = "/nbextensions/";

/** AMD modules by name, as requirejs would hand them to a `define` factory. */
const amdModules = { "@jupyter-widgets/base": base };

// A one-module stand-in for requirejs: the nbextension is `define(["@jupyter-widgets/base"], factory)`.
async function loadAmd(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const source = await response.text();
  let exported;
  const define = (deps, factory) => {
    exported = factory(...deps.map((name) => {
      if (!(name in amdModules)) throw new Error(`${url} needs ${name}, which this page does not provide`);
      return amdModules[name];
    }));
  };
  define.amd = true;
  new Function("define", source)(define);
  return exported;
}

const loaded = new Map();

/** HTMLManager asks this for every module it does not carry itself (here: anywidget). */
function loader(moduleName, moduleVersion) {
  if (!loaded.has(moduleName)) {
    console.log(`loading ${moduleName}@${moduleVersion} from ${NBEXTENSIONS}${moduleName}/index.js`);
    loaded.set(moduleName, loadAmd(`${NBEXTENSIONS}${moduleName}/index.js`));
  }
  return loaded.get(moduleName);
}

window.widgetsRendered = renderWidgets(() => new HTMLManager({ loader })).then(
  () => "rendered",
  (error) => {
    console.error(error);
    return `failed: ${error}`;
  },
);
