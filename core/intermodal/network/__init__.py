"""Container networking: bridge networks, veth endpoints, IPAM, published ports, names, isolation.

The container engine uses `engine.networks` (`manager.NetworkManager`) and
nothing else of this package, in this order:

1. ``mode = modes.parse_mode(spec.networks)``; for ``none`` the runtime makes
   an empty namespace (`NetworkManager.setup_loopback(netns)` brings `lo` up),
   for ``host``/``container:X`` it joins an existing one and nothing here runs.
2. Before creating anything: ``engine.networks.check_ports(cid, spec.ports)``
   raises Conflict for a taken host port (syntax errors: InvalidArgument).
3. Once the container's network namespace exists, before its process runs:
   ``engine.networks.attach(cid, "/proc/PID/ns/net", [EndpointRequest(name,
   ip, aliases), ...], ports, name=, hostname=, hosts_path=, resolv_path=,
   extra_hosts=, dns=, dns_search=, dns_options=)``. It writes the hosts and
   resolv.conf files (the engine bind-mounts them) and keeps them current as
   other containers join and leave. On failure it undoes itself.
4. Optionally ``ports.hold(engine.networks.published_ports(cid))`` in the
   monitor, to keep host programs off the published ports while it runs.
5. When the container stops (or is removed): ``engine.networks.detach(cid)``;
   it is idempotent and works after the namespace is gone.

Docker-shaped output: ``engine.networks.inspect(name)`` for `network
inspect`, ``engine.networks.container_settings(cid)`` for a container's
``NetworkSettings`` (Networks, Ports).

Front ends change a container's networks through the container engine,
not here: ``engine.containers.connect(name, network, aliases=(),
ipv4_address=None)`` and ``engine.containers.disconnect(name, network,
force=False)`` record the change in the container's configuration and
apply it at once where its namespace exists (containers/net.py `change`).

Dual stack: ``engine.networks.create(name, ipv6=True, subnet6=None,
gateway6=None)`` gives every endpoint an IPv6 address (no duplicate
address detection: IPAM keeps them unique) and default route too, with
IPv6 masquerade and published ports on the host's IPv6 addresses (DNAT),
and on [::1] through a small userland proxy (proxy.py; the kernel cannot
DNAT traffic from ::1, see nftables.py).
"""
