/**
 * The ingest benchmark's yardstick (`npm run bench:ingest -- --baseline`): a bare node:http
 * server that reads each request's body to its end, parses it with `JSON.parse`, and answers
 * 200 with a fixed JSON body, as the least any JSON ingest over HTTP does. Run under the same
 * client, connections and bodies as Relaybus, it says how fast this machine is, so that
 * figures taken on different machines (or hours of one virtual machine) can be compared as
 * shares of it.
 *
 *     node bench/bare-http-server.mjs PORT    # listens on 127.0.0.1:PORT
 *
 * Same node flags as the Relaybus server when the benchmark starts it. Plain JavaScript, so
 * that no TypeScript loader runs beside it.
 */
import { Buffer } from "node:buffer";
import { createServer } from "node:http";

const answer = Buffer.from('{"FailedEntryCount":0,"Entries":[]}');
const answerHeaders = {
  "content-type": "application/json",
  "content-length": String(answer.length),
};

const server = createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    try {
      JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      response.writeHead(400, answerHeaders).end(answer);
      return;
    }
    response.writeHead(200, answerHeaders).end(answer);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2]), "127.0.0.1");
