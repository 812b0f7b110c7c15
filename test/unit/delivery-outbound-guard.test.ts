import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { LookupFunction } from "node:net";
import { DEFAULT_CONFIG } from "../../src/config/defaults.js";
import { loadConfig } from "../../src/config/load-config.js";
import {
  BlockedAddressError,
  classifyAddress,
  compileOutboundPolicy,
  createGuardedConnector,
  type AddressClass,
  type OutboundPolicy,
} from "../../src/delivery/outbound-guard.js";
import { isRelaybusError } from "../../src/errors.js";

const DEFAULT_POLICY: OutboundPolicy = DEFAULT_CONFIG.delivery.outbound;

/** Every range of the policy, with its edges and its IPv6 forms. */
const CLASSES: Record<AddressClass, readonly string[]> = {
  public: [
    "8.8.8.8",
    "1.1.1.1",
    "9.255.255.255", // just below 10/8
    "11.0.0.0", // just above 10/8
    "126.255.255.255",
    "128.0.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.167.255.255",
    "192.169.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "223.255.255.255", // just below multicast
    "1.0.0.0", // just above 0/8
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", // just below fc00::/7
    "::ffff:8.8.8.8",
    "64:ff9b::808:808", // NAT64 of 8.8.8.8
    "2002:808:808::1", // 6to4 of 8.8.8.8
    "::2:0:0", // neither IPv4-compatible nor mapped
  ],
  loopback: [
    "127.0.0.1",
    "127.0.0.0",
    "127.255.255.255",
    "127.1.2.3",
    "::1",
    "0:0:0:0:0:0:0:1",
    "[::1]",
    "::1%lo",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "0:0:0:0:0:ffff:127.0.0.1",
    "::FFFF:127.0.0.1",
    "::127.0.0.1", // IPv4-compatible
    "64:ff9b::7f00:1", // NAT64
    "2002:7f00:1::", // 6to4
  ],
  private: [
    "10.0.0.0",
    "10.255.255.255",
    "10.1.2.3",
    "172.16.0.0",
    "172.31.255.255",
    "192.168.0.0",
    "192.168.255.255",
    "100.64.0.0", // carrier-grade NAT
    "100.127.255.255",
    "fc00::",
    "fd12:3456:789a::1",
    "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "fec0::1", // deprecated site-local
    "64:ff9b:1::1", // local-use NAT64
    "::ffff:10.0.0.1",
    "::ffff:192.168.1.1",
    "::ffff:ac10:1", // 172.16.0.1
  ],
  "link-local": [
    "169.254.0.0",
    "169.254.255.255",
    "169.254.1.1",
    "169.254.169.253",
    "fe80::",
    "fe80::1%eth0",
    "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "::ffff:169.254.1.1",
  ],
  metadata: [
    "169.254.169.254",
    "::ffff:169.254.169.254",
    "::ffff:a9fe:a9fe",
    "64:ff9b::a9fe:a9fe",
    "fd00:ec2::254",
    "fd00:ec2:0:0:0:0:0:254",
    "169.254.170.2",
    "100.100.100.200", // inside 100.64/10, but Alibaba Cloud's metadata service
  ],
  unspecified: [
    "0.0.0.0",
    "0.1.2.3",
    "0.255.255.255",
    "::",
    "0:0:0:0:0:0:0:0",
    "::ffff:0.0.0.0",
    "::ffff:0:0",
  ],
  multicast: [
    "224.0.0.0",
    "224.0.0.1",
    "239.255.255.255",
    "ff02::1",
    "ff00::",
    "ffff::1",
    "::ffff:224.0.0.1",
  ],
  broadcast: ["255.255.255.255", "::ffff:255.255.255.255"],
  reserved: [
    "240.0.0.0",
    "240.0.0.1",
    "255.255.255.254",
    "192.0.0.8",
    "192.0.2.1",
    "198.18.0.0",
    "198.19.255.255",
    "198.51.100.1",
    "203.0.113.255",
    "2001:db8::1",
    "100::1",
  ],
};

test("outbound guard - every special range is classified, with its edges and IPv6 forms", () => {
  for (const [expected, addresses] of Object.entries(CLASSES)) {
    for (const address of addresses) {
      assert.equal(classifyAddress(address), expected, address);
    }
  }
});

test("outbound guard - text that is not an IP address has no class", () => {
  for (const text of [
    "localhost",
    "",
    "1.2.3",
    "256.0.0.1",
    "01.2.3.4",
    "10.0.0.0/8",
    "::g",
    "1:2:3:4:5:6:7:8:9",
  ]) {
    assert.equal(classifyAddress(text), undefined, text);
  }
});

test("outbound guard - the default policy allows public addresses only", () => {
  const guard = compileOutboundPolicy(DEFAULT_POLICY);
  for (const address of CLASSES.public) assert.equal(guard.check(address).allowed, true, address);
  for (const [addressClass, addresses] of Object.entries(CLASSES)) {
    if (addressClass === "public") continue;
    for (const address of addresses) {
      const verdict = guard.check(address);
      assert.equal(verdict.allowed, false, address);
      assert.equal(verdict.addressClass, addressClass, address);
    }
  }
  assert.equal(guard.check("not-an-ip").allowed, false);
});

test("outbound guard - a refusal names the class and the setting that would allow it", () => {
  const guard = compileOutboundPolicy(DEFAULT_POLICY);
  const reason = (address: string) => {
    const verdict = guard.check(address);
    assert.ok(!verdict.allowed, address);
    return verdict.reason;
  };
  assert.match(
    reason("127.0.0.1"),
    /^a loopback address; set delivery\.outbound\.allowLoopback: true/,
  );
  assert.match(reason("::ffff:127.0.0.1"), /delivery\.outbound\.allowLoopback/);
  assert.match(
    reason("10.0.0.1"),
    /^a private address; set delivery\.outbound\.allowPrivate: true/,
  );
  assert.match(
    reason("169.254.169.254"),
    /^a metadata address; list it in delivery\.outbound\.allowedCidrs/,
  );
  assert.match(
    reason("fe80::1"),
    /^a link-local address; list it in delivery\.outbound\.allowedCidrs/,
  );
  assert.match(reason("0.0.0.0"), /^an unspecified address/);
});

test("outbound guard - allowLoopback opens loopback only", () => {
  const guard = compileOutboundPolicy({ ...DEFAULT_POLICY, allowLoopback: true });
  for (const address of CLASSES.loopback) assert.equal(guard.check(address).allowed, true, address);
  for (const address of ["10.0.0.1", "169.254.169.254", "0.0.0.0", "fe80::1", "::", "224.0.0.1"]) {
    assert.equal(guard.check(address).allowed, false, address);
  }
});

test("outbound guard - allowPrivate opens private ranges but not metadata inside them", () => {
  const guard = compileOutboundPolicy({ ...DEFAULT_POLICY, allowPrivate: true });
  for (const address of CLASSES.private) assert.equal(guard.check(address).allowed, true, address);
  for (const address of [
    "127.0.0.1",
    "100.100.100.200",
    "fd00:ec2::254",
    "169.254.169.254",
    "fe80::1",
  ]) {
    assert.equal(guard.check(address).allowed, false, address);
  }
});

test("outbound guard - allowedCidrs opens chosen ranges, in IPv4 and IPv4-mapped form", () => {
  const guard = compileOutboundPolicy({
    ...DEFAULT_POLICY,
    allowedCidrs: ["10.20.0.0/16", "169.254.169.254", "fd00:1234::/32", "172.16.5.9/8"],
  });
  for (const address of [
    "10.20.0.1",
    "10.20.255.255",
    "::ffff:10.20.1.1",
    "169.254.169.254",
    "fd00:1234::1",
  ]) {
    assert.equal(guard.check(address).allowed, true, address);
  }
  // 172.16.5.9/8 is 172.0.0.0/8: host bits are ignored.
  assert.equal(guard.check("172.20.0.1").allowed, true);
  for (const address of [
    "10.21.0.1",
    "10.19.255.255",
    "169.254.169.253",
    "fd00:1235::1",
    "127.0.0.1",
  ]) {
    assert.equal(guard.check(address).allowed, false, address);
  }
});

test("outbound guard - deniedCidrs refuses public addresses and wins over every allow", () => {
  const guard = compileOutboundPolicy({
    allowLoopback: true,
    allowPrivate: true,
    allowedCidrs: ["10.0.0.0/8"],
    deniedCidrs: ["8.8.8.0/24", "2001:4860::/32", "127.0.0.2", "10.9.0.0/16"],
  });
  for (const address of [
    "8.8.8.8",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2001:4860:4860::8888",
    "127.0.0.2",
    "10.9.1.1",
  ]) {
    const verdict = guard.check(address);
    assert.equal(verdict.allowed, false, address);
    assert.match(
      verdict.allowed ? "" : verdict.reason,
      /^in delivery\.outbound\.deniedCidrs \(/,
      address,
    );
  }
  for (const address of ["8.8.4.4", "127.0.0.1", "10.8.0.1", "192.168.0.1"]) {
    assert.equal(guard.check(address).allowed, true, address);
  }
});

test("outbound guard - a CIDR block that does not parse is an InvalidConfig naming it", () => {
  for (const bad of [
    "10.0.0.0/33",
    "example.com",
    "::/129",
    "fe80::1%eth0/64",
    "10.0.0.0/",
    "10.0.0.0/-1",
    "10.0.0/8",
  ]) {
    assert.throws(
      () => compileOutboundPolicy({ ...DEFAULT_POLICY, deniedCidrs: ["10.0.0.0/8", bad] }),
      (error: unknown) =>
        isRelaybusError(error, "InvalidConfig") &&
        error.message.startsWith("delivery.outbound.deniedCidrs[1]:"),
      bad,
    );
  }
});

/** A resolver that answers `addresses` for every name (a test's DNS). */
function resolvingTo(...addresses: string[]): LookupFunction {
  return (_hostname, options, callback) => {
    const all = addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
    if (options.all === true) callback(null, all);
    else callback(null, all[0]!.address, all[0]!.family);
  };
}

function connectWith(
  connector: ReturnType<typeof createGuardedConnector>,
  hostname: string,
): Promise<Error> {
  return new Promise((resolve, reject) => {
    connector({ hostname, protocol: "http:", port: "80" }, (...args) => {
      if (args[0] !== null) resolve(args[0]);
      else {
        args[1].destroy();
        reject(new Error(`connected to ${hostname}`));
      }
    });
  });
}

test("outbound guard - the connector judges what a host name resolves to, before connecting", async () => {
  const guard = compileOutboundPolicy(DEFAULT_POLICY);
  const connector = createGuardedConnector(guard, { lookup: resolvingTo("127.0.0.1") });
  const error = await connectWith(connector, "hooks.example.com");
  assert.ok(error instanceof BlockedAddressError);
  assert.equal(error.host, "hooks.example.com");
  assert.equal(
    error.message,
    "hooks.example.com resolved to 127.0.0.1, a loopback address; set delivery.outbound.allowLoopback: true to allow it",
  );

  const several = await connectWith(
    createGuardedConnector(guard, { lookup: resolvingTo("10.0.0.7", "::1", "169.254.169.254") }),
    "internal.example.com",
  );
  assert.ok(several instanceof BlockedAddressError);
  assert.deepEqual(
    several.refused.map((v) => v.address),
    ["10.0.0.7", "::1", "169.254.169.254"],
  );
  assert.match(
    several.message,
    /^internal\.example\.com resolved to 10\.0\.0\.7, a private address; .*\(also refused: ::1, 169\.254\.169\.254\)$/,
  );
});

test("outbound guard - the connector refuses an IP literal host without a lookup", async () => {
  let lookups = 0;
  const counting: LookupFunction = (hostname, options, callback) => {
    lookups++;
    resolvingTo("8.8.8.8")(hostname, options, callback);
  };
  const connector = createGuardedConnector(compileOutboundPolicy(DEFAULT_POLICY), {
    lookup: counting,
  });
  for (const [hostname, reason] of [
    ["127.0.0.1", /^127\.0\.0\.1 is a loopback address/],
    ["::ffff:127.0.0.1", /is a loopback address/],
    ["169.254.169.254", /is a metadata address/],
    ["0.0.0.0", /is an unspecified address/],
  ] as const) {
    const error = await connectWith(connector, hostname);
    assert.ok(error instanceof BlockedAddressError, hostname);
    assert.match(error.message, reason);
  }
  assert.equal(lookups, 0);
});

test("outbound guard - a failed lookup stays a connection error", async () => {
  const failing: LookupFunction = (hostname, _options, callback) =>
    callback(
      Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" }),
      "",
    );
  const error = await connectWith(
    createGuardedConnector(compileOutboundPolicy(DEFAULT_POLICY), { lookup: failing }),
    "nowhere.invalid",
  );
  assert.ok(!(error instanceof BlockedAddressError));
  assert.equal((error as { code?: string }).code, "ENOTFOUND");
});

test("outbound config - settings load from file and environment and are validated", () => {
  const dir = mkdtempSync(join(tmpdir(), "relaybus-outbound-"));
  try {
    assert.deepEqual(loadConfig({}, {}).delivery.outbound, {
      allowLoopback: false,
      allowPrivate: false,
      allowedCidrs: [],
      deniedCidrs: [],
      maxResponseBytes: 1_048_576,
    });

    const file = join(dir, "relaybus.yaml");
    writeFileSync(
      file,
      "delivery:\n  outbound:\n    allowedCidrs: [10.20.0.0/16, 'fd00::/8', 169.254.169.254]\n    maxResponseBytes: 4096\n",
    );
    const fromFile = loadConfig(
      { config: file },
      { RELAYBUS_OUTBOUND_ALLOW_LOOPBACK: "true", RELAYBUS_OUTBOUND_ALLOW_PRIVATE: "0" },
    );
    assert.deepEqual(fromFile.delivery.outbound, {
      allowLoopback: true,
      allowPrivate: false,
      allowedCidrs: ["10.20.0.0/16", "fd00::/8", "169.254.169.254"],
      deniedCidrs: [],
      maxResponseBytes: 4096,
    });
    // The rest of delivery keeps its defaults.
    assert.equal(fromFile.delivery.timeoutMs, DEFAULT_CONFIG.delivery.timeoutMs);

    writeFileSync(
      file,
      "delivery:\n  outbound:\n    deniedCidrs: [10.0.0.0/8, 10.0.0.0/33]\n    allowLocalhost: true\n",
    );
    assert.throws(
      () => loadConfig({ config: file }, {}),
      (error: unknown) =>
        isRelaybusError(error, "InvalidConfig") &&
        /\/delivery\/outbound\/deniedCidrs\/1: must match format "cidr"/.test(error.message) &&
        /\/delivery\/outbound: unknown setting "allowLocalhost"/.test(error.message),
    );
    assert.throws(
      () => loadConfig({}, { RELAYBUS_OUTBOUND_ALLOW_LOOPBACK: "yes please" }),
      (error: unknown) =>
        isRelaybusError(error, "InvalidConfig") &&
        /RELAYBUS_OUTBOUND_ALLOW_LOOPBACK/.test(error.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
