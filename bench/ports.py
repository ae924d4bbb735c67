"""Free loopback ports for the bench scripts' Python parts (import with bench/ on sys.path)."""
import socket


def freeports(n):
    """n distinct free loopback ports. Every socket stays bound until all n are chosen, so no port is handed
    out twice (closing each at once lets the kernel give the same one again, and Consul refuses equal serf
    LAN and WAN ports), as tests/harness FreePorts does."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
