// A device router on `ws`, logging through winston the way its README shows (JSON, coloured level).
// Clients register a device, then send messages to other devices by id.
'use strict';
const { WebSocketServer, WebSocket } = require('ws');
const winston = require('winston');
const { randomUUID } = require('crypto');

const logger = winston.createLogger({
  level: 'info',
  format: winston.format.combine(
    winston.format.colorize(),
    winston.format.timestamp(),
    winston.format.errors({ stack: true }),
    winston.format.json(),
  ),
  defaultMeta: { service: 'device-router' },
  transports: [new winston.transports.Console()],
});

class MessageDeliveryError extends Error {
  constructor(messageId, reason) {
    super(`Message delivery failed: ${messageId} - ${reason}`);
    this.name = 'MessageDeliveryError';
    this.messageId = messageId;
  }
}

const port = Number(process.argv[2] || 3001);
const devices = new Map();
const wss = new WebSocketServer({ host: '127.0.0.1', port });

wss.on('listening', () => logger.info(`WebSocket server listening on port ${port}`));

wss.on('connection', (ws, req) => {
  const connectionId = randomUUID();
  ws.connectionId = connectionId;
  logger.info('Client connected', { connectionId, remoteAddress: req.socket.remoteAddress });
  ws.on('message', (data) => handle(ws, data));
  ws.on('close', (code, reason) => {
    if (ws.deviceId && devices.get(ws.deviceId) === ws) devices.delete(ws.deviceId);
    logger.info('Client disconnected', { connectionId, code, reason: reason.toString() });
  });
  ws.on('error', (err) => logger.error('Socket error', { connectionId, error: err.message }));
});

function handle(ws, data) {
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    logger.warn('Invalid message format', { connectionId: ws.connectionId });
    return;
  }
  const payload = msg.payload || {};
  if (msg.type === 'register') {
    ws.deviceId = payload.deviceId;
    devices.set(payload.deviceId, ws);
    logger.info('Device registered', { connectionId: ws.connectionId, payload });
    ws.send(JSON.stringify({ type: 'registered', payload: { deviceId: payload.deviceId } }));
    return;
  }
  if (msg.type === 'send') route(ws, payload, Date.now());
}

function route(sender, payload, receivedAt) {
  const { messageId } = payload;
  const target = devices.get(payload.to);
  if (!target) {
    logger.warn(`Delivery failed: unknown recipient ${payload.to}`, {
      messageId, connectionId: sender.connectionId,
    });
    sender.send(JSON.stringify({ type: 'error', payload: { messageId, error: 'unknown recipient' } }));
    return;
  }
  const out = JSON.stringify({ type: 'message', payload });
  const deliver = () => {
    if (payload.strict && target.readyState !== WebSocket.OPEN) {
      throw new MessageDeliveryError(messageId, 'Connection not open');
    }
    target.send(out, (err) => {
      if (err) {
        logger.error('Failed to send message', { messageId, connectionId: target.connectionId, error: err.message });
      } else {
        logger.info('Message delivered', { messageId, connectionId: target.connectionId, latencyMs: Date.now() - receivedAt });
      }
    });
  };
  if (payload.delayMs) setTimeout(deliver, payload.delayMs);
  else deliver();
}
