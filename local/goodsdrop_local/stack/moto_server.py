"""moto's server for the local stack: one endpoint for every AWS API the functions use."""

from __future__ import annotations

from goodsdrop.settings import settings
from goodsdrop_local.stack.server import HOST, PYTHON, Server, http_ok


class MotoServer(Server):
    """moto's server: one local endpoint for every AWS API the functions use (SSM, SES, ...)."""

    name = "moto"
    marker = "moto.server"
    start_timeout = 30.0

    @property
    def ports(self) -> tuple[int, ...]:
        return (settings.aws_port,)

    @property
    def address(self) -> str:
        return f"http://{HOST}:{settings.aws_port}"

    def command(self) -> list[str]:
        return [PYTHON, "-m", "moto.server", "-H", HOST, "-p", str(settings.aws_port)]

    def healthy(self) -> bool:
        return http_ok(f"{self.address}/moto-api/")

