/**
 * Acknowledging MQTT messages only once the sink confirmed them, while more keep arriving.
 *
 * The broker forgets a QoS 1 message when it gets the PUBACK, and a QoS 2 message when it gets
 * the PUBREC (after that it only completes the handshake). Until then it keeps the message in
 * the session and sends it again when the same client id reconnects. So the source must hold
 * those packets back until the stream confirmed the batch, and write them then, in the order
 * the messages came (MQTT requires acknowledgements in that order).
 *
 * mqtt.js 5 offers two public hooks, `handleMessage` and the MQTT 5 option `customHandleAcks`,
 * and both delay the acknowledgement by not calling back. But mqtt.js handles incoming packets
 * one at a time and takes the next only after that callback: with either hook the client
 * holds exactly one unacknowledged message, so batches would hold one event and every event
 * would wait for a sink round trip (and PINGRESP would queue behind it). Instead the source
 * lets mqtt.js acknowledge at once as far as its pipeline knows, and this module keeps the
 * PUBACK/PUBREC it then writes from reaching the socket, by wrapping the client's
 * `_sendPacket` (private, but what mqtt.js's own handlers call for every packet they send).
 * `acknowledge` writes them later through the unwrapped method. The connector's integration
 * test fails if an mqtt.js upgrade changes this (messages would come again, or not at all).
 */
import type { MqttClient } from "mqtt";

type SendPacket = (
  packet: { cmd: string; messageId?: number; reasonCode?: number },
  callback?: (error?: Error) => void,
  ...rest: unknown[]
) => void;

/** Writes held-back acknowledgements. */
export interface DeferredAcks {
  /**
   * Acknowledges one received message (PUBACK for QoS 1, PUBREC for QoS 2), if the connection
   * that received it is still up; a message received on a lost connection is the broker's to
   * send again.
   */
  acknowledge(messageId: number, qos: 1 | 2): void;
}

/**
 * Holds back every PUBACK and PUBREC `client` would write. Call before the client connects, so
 * that no message of a resumed session is acknowledged by mqtt.js itself.
 */
export function deferAcks(client: MqttClient): DeferredAcks {
  const target = client as unknown as { _sendPacket?: SendPacket };
  const sendPacket = target._sendPacket;
  if (typeof sendPacket !== "function") {
    throw new Error(
      "mqtt: this mqtt.js version has no MqttClient._sendPacket, so the MQTT source cannot delay acknowledgements",
    );
  }
  const send: SendPacket = sendPacket.bind(client);
  target._sendPacket = (packet, callback, ...rest) => {
    if (packet.cmd === "puback" || packet.cmd === "pubrec") {
      // mqtt.js waits for this callback before it reads the next packet: release it now.
      callback?.();
      return;
    }
    send(packet, callback, ...rest);
  };
  return {
    acknowledge(messageId, qos) {
      // Written while disconnected, mqtt.js would keep the packet for a later connection,
      // whose packet ids mean other messages.
      if (!client.connected) return;
      send({ cmd: qos === 1 ? "puback" : "pubrec", messageId, reasonCode: 0 });
    },
  };
}
