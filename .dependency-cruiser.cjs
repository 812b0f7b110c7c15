// The layers of shared/DESIGN.md section 4: imports point down only, never in a circle.
//   api, cli → events, rules, delivery → patterns, transform, log, config → errors, types
// Connectors see only their interface and src/types.ts.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", from: {}, to: { circular: true } },
    {
      name: "base-imports-nothing",
      comment: "errors.ts, types.ts and version.ts are the floor: they import no other module of ours",
      severity: "error",
      from: { path: "^src/(errors|types|version)\\.ts$" },
      to: { path: "^(src|connectors)/" },
    },
    {
      name: "low-layers-stay-low",
      comment: "config, log, patterns and transform sit under events, rules, delivery, api and cli",
      severity: "error",
      from: { path: "^src/(config|log|patterns|transform)/" },
      to: { path: "^src/(events|rules|delivery|api|cli)/" },
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
      comment: "events, rules and delivery never import the api or the cli",
      severity: "error",
      from: { path: "^src/(events|rules|delivery)/" },
      to: { path: "^src/(api|cli)/" },
    },
    { name: "events-not-rules-or-delivery", severity: "error", from: { path: "^src/events/" }, to: { path: "^src/(rules|delivery)/" } },
    { name: "delivery-not-rules-or-events", severity: "error", from: { path: "^src/delivery/" }, to: { path: "^src/(rules|events)/" } },
    {
      name: "rules-only-router-contract",
      severity: "error",
      from: { path: "^src/rules/" },
      to: { path: "^src/(events/|delivery/(?!router\\.ts$))" },
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
