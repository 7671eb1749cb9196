"""GET /generations/<file> and /temp/<file>: only files sdgate wrote, by exact name; expired temp files are 404."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from server.api.errors import ApiError
from server.http.deps import StateDep

router = APIRouter()

_MEDIA = {".png": "image/png", ".base64": "text/plain"}


def _serve(area: str, name: str, state: StateDep) -> FileResponse:
    path = state.store.path_for(area, name)
    if path is None:
        raise ApiError("File not found", http_status=404)
    return FileResponse(path, media_type=_MEDIA[path.suffix])


@router.get("/generations/{name}", include_in_schema=False)
async def generation_file(name: str, state: StateDep) -> FileResponse:
    return _serve("generations", name, state)


@router.get("/temp/{name}", include_in_schema=False)
async def temp_file(name: str, state: StateDep) -> FileResponse:
    return _serve("temp", name, state)
