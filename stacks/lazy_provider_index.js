// Preloaded into the jsii kernel (node --require) by stacks/bootstrap.py while it starts.
// Each prebuilt provider's lib/index.js requires every one of its submodules up front (2,135 for
// aws, ~250 MB of JavaScript); this turns `exports.x = require("./x");` lines of those index files
// into getters that load a submodule on first use. Other files are compiled untouched, and a
// provider index of another shape simply stays eager. PLATFORM_FAST_IMPORTS=0 turns it off.
"use strict";
const Module = require("module");
const fs = require("fs");
const INDEX = /[\\/]@cdktf[\\/]provider-[^\\/]+[\\/]lib[\\/]index\.js$/;
const EAGER = /^exports\.([A-Za-z_$][\w$]*) = require\("(\.\/[^"]+)"\);$/gm;
const compileJs = Module._extensions[".js"];
Module._extensions[".js"] = function (module, filename) {
  if (!INDEX.test(filename)) return compileJs(module, filename);
  const source = fs.readFileSync(filename, "utf8").replace(EAGER, (_, name, path) =>
    `Object.defineProperty(exports, ${JSON.stringify(name)}, { enumerable: true, configurable: true, get: () => require(${JSON.stringify(path)}) });`);
  module._compile(source, filename);
};
