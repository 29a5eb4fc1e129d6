// The same device router, logging through pino with its defaults (numeric levels, `msg`, `err`).
'use strict';
const { WebSocketServer, WebSocket } = require('ws');
const pino = require('pino');

const logger = pino();

class MessageDeliveryError extends Error {
  constructor(messageId, reason) {
    super(`Message delivery failed: ${messageId} - ${reason}`);
    this.name = 'MessageDeliveryError';
    this.messageId = messageId;
  }
}

const port = Number(process.argv[2] || 3001);
const devices = new Map();
let nextSocket = 0;
const wss = new WebSocketServer({ host: '127.0.0.1', port });

wss.on('listening', () => logger.info({ port }, 'server listening'));

wss.on('connection', (ws, req) => {
  const socketId = `sock-${++nextSocket}`;
  ws.socketId = socketId;
  logger.info({ socketId, ip: req.socket.remoteAddress }, 'new connection');
  ws.on('message', (data) => handle(ws, data));
  ws.on('close', (code, reason) => {
    if (ws.deviceId && devices.get(ws.deviceId) === ws) devices.delete(ws.deviceId);
    logger.info({ socketId, code, reason: reason.toString() }, 'connection closed');
  });
  ws.on('error', (err) => logger.error({ err, socketId }, 'socket error'));
});

function handle(ws, data) {
  let msg;
  try {
    msg = JSON.parse(data);
  } catch (err) {
    logger.warn({ err, socketId: ws.socketId }, 'could not parse message');
    return;
  }
  const payload = msg.payload || {};
  if (msg.type === 'register') {
    ws.deviceId = payload.deviceId;
    devices.set(payload.deviceId, ws);
    logger.info({ socketId: ws.socketId, deviceId: payload.deviceId }, 'device registered');
    ws.send(JSON.stringify({ type: 'registered', payload: { deviceId: payload.deviceId } }));
    return;
  }
  if (msg.type === 'send') route(ws, payload, process.hrtime.bigint());
}

function route(sender, payload, receivedAt) {
  const msgId = payload.messageId;
  const target = devices.get(payload.to);
  if (!target) {
    logger.warn({ msgId, to: payload.to, from: sender.socketId }, 'recipient not found');
    sender.send(JSON.stringify({ type: 'error', payload: { messageId: msgId, error: 'recipient not found' } }));
    return;
  }
  const out = JSON.stringify({ type: 'message', payload });
  const deliver = () => {
    if (payload.strict && target.readyState !== WebSocket.OPEN) {
      throw new MessageDeliveryError(msgId, 'Connection not open');
    }
    target.send(out, (err) => {
      if (err) {
        logger.error({ err, msgId, socketId: target.socketId }, 'send failed');
      } else {
        const latency = Number(process.hrtime.bigint() - receivedAt) / 1e6;
        logger.info({ msgId, socketId: target.socketId, latency }, 'message forwarded');
      }
    });
  };
  if (payload.delayMs) setTimeout(deliver, payload.delayMs);
  else deliver();
}
