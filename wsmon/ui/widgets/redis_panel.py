"""Redis: up or down, PING latency, clients, memory against maxmemory, ops/s, hit ratio, evictions,
rejections, the busiest pub/sub channels, subscribers about to be cut off, and slow commands.
"""

from __future__ import annotations

import math

from textual.content import Content

from wsmon.core.events import PubsubClientNearLimit, RedisExtra, RedisSample, SlowlogEntry
from wsmon.core.state import State, TargetState
from wsmon.ui.format import count
from wsmon.ui.widgets.target_panel import (
    Part,
    TargetPanel,
    fill_style,
    hint_lines,
    ms,
    one_line,
    rate,
    size,
    status_key,
    status_parts,
    window_ms,
)

TOP_CHANNELS_SHOWN = 3
NEAR_LIMIT_SHOWN = 5


class RedisPanel(TargetPanel):
    KINDS = frozenset({"redis"})
    TITLE = "Redis"

    def update_from(self, state: State) -> bool:
        targets = self.targets_of(state)
        if not self.show_if(bool(targets)):
            return False
        sample = state.redis
        now = state.last_mono
        # Samples are frozen and replaced whole, so identity says whether anything in one changed.
        key = (sample, state.redis_slowlog_missed, tuple(status_key(target, now) for target in targets))
        return self.show(key, lambda: self._build(state, targets, sample))

    def _build(self, state: State, targets: list[TargetState], sample: RedisSample | None) -> Content:
        now = state.last_mono
        lines: list[Content] = []
        for target in targets:
            version = sample.extra.redis_version if sample and sample.target == target.name else ""
            head: list[Part] = [(f"{target.name} ", "bold"), *status_parts(target, now)]
            if target.up and version:
                head.append(f" · Redis {version}")
            if target.address:
                head.append((f" · {target.address}", "$text-muted"))
            lines.append(Content.assemble(*head))
        if not any(target.up for target in targets) or sample is None:
            lines.extend(hint_lines(targets))
            if sample is None and any(target.up for target in targets):
                lines.append(Content.styled("waiting for the first sample", "$text-muted"))
            return Content("\n").join(lines)
        lines.extend(_near_limit_lines(sample.extra.pubsub_near_limit))
        p50, p95 = window_ms(state, "redis")
        if math.isnan(p50) and sample.ping_ms is not None:
            p50 = p95 = sample.ping_ms
        lines.append(Content(f"PING p50 {ms(p50)} · p95 {ms(p95)}"))
        lines.append(_clients_line(sample))
        lines.append(_memory_line(sample))
        lines.append(_ops_line(sample))
        lines.append(_dropped_line(sample))
        lines.extend(_pubsub_lines(sample.extra))
        lines.extend(_slowlog_lines(state.redis_slowlog, state.redis_slowlog_missed))
        lines.extend(hint_lines(targets))
        return Content("\n").join(lines)


def _slowlog_lines(slowlog: list[SlowlogEntry], missed: int) -> list[Content]:
    """The session's last few slow commands (State keeps them: a sample carries only its new ones)."""
    if not slowlog:
        return []
    title = "slow commands" + (f" ({missed} more missed)" if missed else "")
    lines = [Content.styled(title, "bold")]
    for entry in reversed(slowlog):
        args = entry.args
        lines.append(
            Content.assemble(
                f"  {one_line(entry.command, 30)}",
                (f" ({args} arg{'s' if args != 1 else ''})", "$text-muted"),
                (f" {ms(entry.duration_us / 1000.0)}", "$warning"),
            )
        )
    return lines


def _near_limit_lines(near: list[PubsubClientNearLimit]) -> list[Content]:
    """Subscribers whose output buffer is filling: at 100 % of the limit Redis disconnects them."""
    if not near:
        return []
    lines = [Content.styled("⚠ Redis cuts these off at 100 %:", "bold $error")]
    for client in near[:NEAR_LIMIT_SHOWN]:
        name = client.client or client.addr or "?"
        addr = client.addr
        lines.append(
            Content.assemble(
                (f"  {name} {client.ratio * 100:.0f} %", "bold $error"),
                (f" {size(client.omem)} / {size(client.limit)}", "$error"),
                (f" {addr}" if addr and addr != name else "", "$text-muted"),
            )
        )
    if len(near) > NEAR_LIMIT_SHOWN:
        lines.append(Content.styled(f"  and {len(near) - NEAR_LIMIT_SHOWN} more", "$error"))
    return lines


def _optional(value: int | None) -> str:
    return "—" if value is None else count(value)


def _clients_line(sample: RedisSample) -> Content:
    # Blocked clients are not coloured: queue workers waiting in BLPOP are blocked by design.
    return Content(
        f"clients {_optional(sample.connected_clients)} · blocked {_optional(sample.blocked_clients)}"
    )


def _memory_line(sample: RedisSample) -> Content:
    used, limit = sample.used_memory, sample.maxmemory
    policy = sample.extra.maxmemory_policy
    if used is None:
        return Content("memory —")
    if not limit:
        return Content.assemble(f"memory {size(used)} · ", ("no maxmemory", "$text-muted"))
    ratio = used / limit
    return Content.assemble(
        "memory ",
        (f"{size(used)} / {size(limit)} ({ratio * 100:.0f} %)", fill_style(ratio)),
        (f" {policy}" if policy else "", "$text-muted"),
    )


def _ops_line(sample: RedisSample) -> Content:
    hits = "—" if sample.hit_ratio is None else f"{sample.hit_ratio * 100:.1f} %"
    return Content(f"ops/s {rate(sample.ops_per_sec)} · hits {hits}")


def _dropped_line(sample: RedisSample) -> Content:
    """Evictions and refused connections: the totals, and what the last interval added in colour."""
    parts: list[Part] = []
    extra = sample.extra
    for label, delta, total, style in (
        ("evicted", sample.evicted_keys, extra.evicted_keys_total, "$warning"),
        ("rejected", sample.rejected_connections, extra.rejected_connections_total, "$error"),
    ):
        if total is None:
            total = delta
        parts.append(f"{label} {_optional(total)}")
        if delta:
            parts.append((f" (+{count(delta)})", style))
        parts.append(" · ")
    return Content.assemble(*parts[:-1])


def _pubsub_lines(extra: RedisExtra) -> list[Content]:
    channels = extra.pubsub_channels
    if channels is None:
        return []
    summary = f"pub/sub {count(channels)} channel{'s' if channels != 1 else ''}"
    patterns = extra.pubsub_patterns
    if patterns:
        summary += f" · {count(patterns)} pattern{'s' if patterns != 1 else ''}"
    clients = extra.pubsub_clients
    if clients is not None:
        summary += f" · {count(clients)} subscriber{'s' if clients != 1 else ''}"
    lines = [Content(summary)]
    top = extra.pubsub_top
    if top:
        shown = " · ".join(f"{c.channel} {count(c.subscribers)}" for c in top[:TOP_CHANNELS_SHOWN])
        lines.append(Content.styled(f"  {shown}", "$text-muted"))
    return lines
