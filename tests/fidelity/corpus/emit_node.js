// Writes the corpus scenario through one real Node logger, in its default or common configuration.
// Usage: node emit_node.js winston-json|winston-simple|pino|bunyan
'use strict';
const style = process.argv[2];

function winston(format) {
  const w = require('winston');
  const logger = w.createLogger({ format, transports: [new w.transports.Console()] });
  return {
    info: (msg, meta) => logger.info(msg, meta),
    warn: (msg, meta) => logger.warn(msg, meta),
    error: (msg, meta) => logger.error(msg, meta),
  };
}

function objectFirst(logger) {
  // pino and bunyan take the fields first, the message last
  return {
    info: (msg, meta) => logger.info(meta || {}, msg),
    warn: (msg, meta) => logger.warn(meta || {}, msg),
    error: (msg, meta) => logger.error(meta || {}, msg),
  };
}

const loggers = {
  'winston-json': () => {
    const { format } = require('winston');
    return winston(format.combine(format.colorize(), format.timestamp(), format.errors({ stack: true }), format.json()));
  },
  'winston-simple': () => {
    const { format } = require('winston');
    return winston(format.combine(format.errors({ stack: true }), format.simple()));
  },
  pino: () => objectFirst(require('pino')()),
  bunyan: () => {
    const bunyan = require('bunyan');
    return objectFirst(bunyan.createLogger({ name: 'router', serializers: bunyan.stdSerializers }));
  },
};

const log = loggers[style]();
const ids = style.startsWith('winston')
  ? { conn: 'connectionId', msg: 'messageId' }
  : style === 'pino' ? { conn: 'socketId', msg: 'msgId' } : { conn: 'clientId', msg: 'messageId' };
const c = (extra) => ({ [ids.conn]: 'c-1', ...extra });
const m = (id, extra) => ({ [ids.msg]: id, ...extra });

log.info('server listening', { port: 3001 });
log.info('client connected', c({ remoteAddress: '127.0.0.1' }));
log.info('message delivered', c(m('m-1', { latencyMs: 3 })));
const closed = new Error('WebSocket is not open: readyState 3 (CLOSED)');
if (style.startsWith('winston')) log.error('failed to send message', c(m('m-2', { error: closed.message })));
else log.error('failed to send message', c(m('m-2', { err: closed })));
log.warn('recipient not found', m('m-3', { to: 'ghost' }));
log.info('client disconnected', c({ code: 1006, reason: '' }));
const dbError = new Error('relation "devices" does not exist');
if (style.startsWith('winston')) log.error(dbError);
else log.error('query failed', { err: dbError });
log.info('connected to redis at 127.0.0.1:6379');
