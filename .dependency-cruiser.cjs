// The layers of shared/DESIGN.md section 4: imports point down only, never in a circle.
//   api, cli → events, rules, delivery, streams, metering → patterns, transform, log, config → errors, types, start-worker
// streams sit on top of the middle: they compile patterns and transforms as rules do, retry as delivery does.
// metering reads only log and config (usage, prices); the service hands it what it needs of rules.
// Connectors see only their interface and src/types.ts.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", from: {}, to: { circular: true } },
    {
      name: "base-imports-nothing",
      comment: "errors.ts, types.ts, version.ts and start-worker.ts are the floor: they import no other module of ours",
      severity: "error",
      from: { path: "^src/(errors|types|version|start-worker)\\.ts$" },
      to: { path: "^(src|connectors)/" },
    },
    {
      name: "low-layers-stay-low",
      comment: "config, log, patterns and transform sit under events, rules, delivery, streams, metering, api and cli",
      severity: "error",
      from: { path: "^src/(config|log|patterns|transform)/" },
      to: { path: "^src/(events|rules|delivery|streams|metering|api|cli)/" },
    },
    {
      name: "low-layers-are-independent",
      comment: "patterns and transform do not know about storage or configuration loading",
      severity: "error",
      from: { path: "^src/(patterns|transform)/" },
      to: { path: "^src/(log|config)/" },
    },
    {
      name: "middle-layers-below-api",
      comment: "events, rules, delivery, streams and metering never import the api or the cli",
      severity: "error",
      from: { path: "^src/(events|rules|delivery|streams|metering)/" },
      to: { path: "^src/(api|cli)/" },
    },
    {
      name: "metering-only-log-and-config",
      comment: "metering imports log, config, errors and types; never the other middle layers",
      severity: "error",
      from: { path: "^src/metering/" },
      to: { path: "^src/(events|rules|delivery|streams|patterns|transform)/" },
    },
    {
      name: "middle-layers-not-metering",
      comment: "events, rules, delivery and streams do not know about metering: the stores count, the service wires",
      severity: "error",
      from: { path: "^src/(events|rules|delivery|streams)/" },
      to: { path: "^src/metering/" },
    },
    { name: "events-not-rules-or-delivery", severity: "error", from: { path: "^src/events/" }, to: { path: "^src/(rules|delivery)/" } },
    { name: "delivery-not-rules-or-events", severity: "error", from: { path: "^src/delivery/" }, to: { path: "^src/(rules|events)/" } },
    {
      name: "rules-only-router-contract",
      severity: "error",
      from: { path: "^src/rules/" },
      to: { path: "^src/(events/|delivery/(?!router\\.ts$))" },
    },
    {
      name: "streams-on-top-of-the-middle",
      comment: "events, rules and delivery do not know about streams (streams build on them)",
      severity: "error",
      from: { path: "^src/(events|rules|delivery)/" },
      to: { path: "^src/streams/" },
    },
    { name: "api-not-cli", severity: "error", from: { path: "^src/api/" }, to: { path: "^src/cli/" } },
    {
      name: "connectors-see-interface-only",
      severity: "error",
      from: { path: "^connectors/" },
      to: { path: "^src/(?!types\\.ts$)" },
    },
    {
      name: "src-not-tests",
      severity: "error",
      from: { path: "^(src|connectors)/" },
      to: { path: "^(test|bench|scripts)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    exclude: { path: "^(node_modules|dist)/" },
  },
};
