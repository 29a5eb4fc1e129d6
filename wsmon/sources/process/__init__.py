"""The server's process tree through psutil: CPU, RSS, threads, fds and TCP states on its port.

The process is found by pid, by name or command line, or by the port it listens on; when it exits,
a new process found the same way (a restarted server) is followed. Sampling runs in a worker thread
(psutil reads /proc synchronously). CPU is percent of one core summed over the tree, as top shows it;
``cpu_basis="machine"`` divides by the core count. It is measured between two readings of each
process's CPU time at least one sampling interval apart, so a process's first sample has no CPU
figure and is not emitted, and no figure exceeds 100 % times the tree's threads or the machine's cores.

Where things live: ``find`` locates the process and reads /proc about its port, ``sampler`` measures
the tree, ``source`` is the source that emits what they find.
"""

from wsmon.sources.process.find import (
    PidLocator,
    describe_exit,
    exit_status,
    listening_inodes,
    pid_from_name,
    pid_from_port,
    port_of_local_url,
    socket_owners,
    tcp_states_from_proc,
    tcp_states_on_port,
)
from wsmon.sources.process.sampler import (
    STOPPED_STATES,
    CpuReading,
    ProcessSampler,
    Sample,
    cpu_bound,
    cpu_percent_between,
    is_stopped,
    stopped_message,
)
from wsmon.sources.process.source import ProcessSource

__all__ = [
    "STOPPED_STATES",
    "CpuReading",
    "PidLocator",
    "ProcessSampler",
    "ProcessSource",
    "Sample",
    "cpu_bound",
    "cpu_percent_between",
    "describe_exit",
    "exit_status",
    "is_stopped",
    "listening_inodes",
    "pid_from_name",
    "pid_from_port",
    "port_of_local_url",
    "socket_owners",
    "stopped_message",
    "tcp_states_from_proc",
    "tcp_states_on_port",
]
