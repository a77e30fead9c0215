"""What deploy/compose.yml exposes (issue 12, holes 8 and 12): the API is published on this
host only unless the operator says otherwise, and it believes forwarded headers from the Compose
network's gateway (the way a reverse proxy on the host reaches it) and from nowhere else."""

from __future__ import annotations

import ipaddress

from tests.deploy.test_compose import compose, env_example, services, with_defaults  # noqa: F401


def test_the_api_is_published_on_loopback_only_by_default(services):  # noqa: F811
    ports = [with_defaults(str(port)) for port in services["api"]["ports"]]
    assert ports == ["127.0.0.1:8080:8080"], ports
    assert env_example()["API_PORT"][0].startswith("127.0.0.1:")


def test_only_the_proxys_gateway_is_trusted(compose, services):  # noqa: F811
    trusted = with_defaults(str(services["api"]["environment"]["FORWARDED_ALLOW_IPS"]))
    [subnet] = [with_defaults(c["subnet"])
                for c in compose["networks"]["default"]["ipam"]["config"]]
    network = ipaddress.ip_network(subnet)
    assert trusted != "*"
    assert [ipaddress.ip_address(a.strip()) for a in trusted.split(",")] == [
        next(network.hosts())], "the gateway (the network's first address) and nothing else"


def test_no_other_service_is_published_beyond_this_host(services):  # noqa: F811
    for name, service in services.items():
        for port in service.get("ports", []):
            assert with_defaults(str(port)).startswith("127.0.0.1:"), (name, port)
