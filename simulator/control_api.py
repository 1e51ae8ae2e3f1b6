"""The simulator's control API: HTTP JSON over a DeviceRack, and the technician UI.

Strategy: a small FastAPI app (``make_app(rack)``) that the tests, ``hcp sim devices`` and
the web page share. Every fault knob is one POST on a device; a refused request answers
4xx/5xx with ``{"error": {"zh": ..., "en": ...}}`` and changes nothing. The UI is one
static page (simulator/ui/index.html: plain HTML and JS, no build step) that polls
``GET /api/devices`` and shows each device's face (``display.png``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from simulator.bridge import FaultError
from simulator.rack import DeviceRack, RackError

UI = Path(__file__).resolve().parent / "ui" / "index.html"
DeviceId = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Press(Strict):
    button: int = Field(ge=0, le=4, description="0 = level 1 (非常满意) … 4 = level 5")
    ms: int = Field(default=80, ge=1, le=5000, description="how long the button is held")


class Power(Strict):
    on: bool


class CableReq(Strict):
    plugged: bool


class FaultsReq(Strict):
    drop: float | None = Field(default=None, ge=0.0, le=1.0)
    corrupt: float | None = Field(default=None, ge=0.0, le=1.0)
    delay_ms: int | None = Field(default=None, ge=0, le=60_000)
    baud: int | None = Field(default=None, ge=0, le=4_000_000)


class Clock(Strict):
    skew_ms: int = Field(gt=0, le=86_400_000, description="move the device clock ahead")


def make_app(rack: DeviceRack) -> FastAPI:
    app = FastAPI(title="hcp simulator control API", version="1")

    @app.exception_handler(RackError)
    async def rack_error(_: Request, e: RackError) -> JSONResponse:
        return JSONResponse({"error": {"zh": e.zh, "en": e.en}}, status_code=e.status)

    @app.exception_handler(FaultError)
    async def fault_error(_: Request, e: FaultError) -> JSONResponse:
        return JSONResponse({"error": {"zh": e.zh, "en": e.en}}, 400)

    @app.get("/", include_in_schema=False)
    async def ui() -> FileResponse:
        return FileResponse(UI, media_type="text/html; charset=utf-8")

    @app.get("/api/manifest")
    async def manifest() -> Any:
        return rack.manifest()

    @app.get("/api/devices")
    async def devices() -> Any:
        return [await rack.summary(i) for i in rack.devices]

    @app.get("/api/devices/{device_id}")
    async def device(device_id: DeviceId) -> Any:
        return await rack.summary(device_id)

    @app.get("/api/devices/{device_id}/display.png")
    async def display(device_id: DeviceId) -> Response:
        png = await rack.frame_png(device_id)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.post("/api/devices/{device_id}/press")
    async def press(device_id: DeviceId, req: Press) -> Any:
        rack.get(device_id)
        return await rack.click(device_id, req.button, req.ms)

    @app.post("/api/devices/{device_id}/power")
    async def power(device_id: DeviceId, req: Power) -> Any:
        await rack.power(device_id, req.on)
        return await rack.summary(device_id)

    @app.post("/api/devices/{device_id}/cable")
    async def cable(device_id: DeviceId, req: CableReq) -> Any:
        rack.cable(device_id, req.plugged)
        return await rack.summary(device_id)

    @app.post("/api/devices/{device_id}/faults")
    async def faults(device_id: DeviceId, req: FaultsReq) -> Any:
        return rack.faults(device_id, **req.model_dump(exclude_none=True))

    @app.post("/api/devices/{device_id}/clock")
    async def clock(device_id: DeviceId, req: Clock) -> Any:
        return await rack.skew_clock(device_id, req.skew_ms)

    return app
