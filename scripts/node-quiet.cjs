// Preloaded into every Node process the project starts (`npx cdktf ...` through .npmrc's
// node-options, the jsii kernel of `python main.py` through main.py's NODE_OPTIONS), so a normal
// run prints no line that looks like an error and is not one (issue 23 item 6):
// - CHECKPOINT_DISABLE: the cdktf CLI's update check calls checkpoint-api.hashicorp.com and logs
//   "[ERROR] default - getaddrinfo ENOTFOUND" wherever that host is unreachable; Terraform, which
//   the CLI starts, honours the same switch. A value the user set wins.
// - DEP0044 only (util.isArray, called by a dependency of the jsii runtime on Node 22): the CLI
//   relays the app's stderr as "[ERROR] default - ..."; every other warning still prints.
"use strict";
if (!process.env.CHECKPOINT_DISABLE) process.env.CHECKPOINT_DISABLE = "1";
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const code = rest[0] && typeof rest[0] === "object" ? rest[0].code : rest[1];
  if (code === "DEP0044") return;
  return emitWarning.call(process, warning, ...rest);
};
