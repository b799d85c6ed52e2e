"""Matrix rows of the gateway's own API, driven with httpx (what no SDK covers)."""

import secrets

import httpx

from tests.compat.matrix import Ctx, Row, params, row

ROWS: list[Row] = []


@row(ROWS, "keys-validate-made-up", "httpx", "POST /api/v1/keys/validate: a made-up key is invalid")
async def made_up_key(ctx: Ctx) -> None:
    async with httpx.AsyncClient(base_url=ctx.edge, timeout=30) as edge:
        for provider, prefix in (("anthropic", "sk-ant"), ("deepseek", "sk"), ("xai", "xai")):
            response = await edge.post(
                "/api/v1/keys/validate",
                json={"provider": provider, "apiKey": f"{prefix}-{secrets.token_hex(16)}"},
                headers={"Authorization": f"Bearer {ctx.token}"},
            )
            assert response.status_code == 200, response.text
            assert response.json()["valid"] is False, (provider, response.json())


@params(ROWS)
async def test_gateway_api(matrix_row: Row, ctx: Ctx) -> None:
    await matrix_row.check(ctx)
