/**
 * The redis connectors: a sink that appends events to a Redis stream, and a source that
 * reads one through a consumer group.
 */
export { redisSink, type RedisSinkConfig } from "./redis-sink.js";
export { redisSource, type RedisSourceConfig } from "./redis-source.js";
