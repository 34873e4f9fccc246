// pino JSON logs (human-readable on a terminal); credentials are redacted wherever they could appear.
import pino, { type Logger } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'authorization',
  '*.password', '*.identity_token', '*.auth', 'configs.*.auth', 'config.configs.*.auth',
  // cache.store and cluster secrets (the Redis URL may carry a password): log them only through redactUrl.
  'secretAccessKey', '*.secretAccessKey', 'cache.store.secretAccessKey', 'config.cache.store.secretAccessKey',
  'cluster.redis', 'config.cluster.redis', 'cluster.secret', 'config.cluster.secret',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const opts: pino.LoggerOptions = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: 'ocimirror' } };
  if (destination) return pino(opts, destination);
  if (process.stdout.isTTY) {
    return pino({ ...opts, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' } } });
  }
  return pino(opts);
}
