"""``/api/v1/namespaces/{namespace}/files``: namespace files, as Kestra's API serves them.

The same paths and shapes as Kestra 1.x's ``NamespaceFileController``:

- ``GET .../files?path=`` the file's bytes (``application/octet-stream``);
- ``GET .../files/stats?path=`` and ``GET .../files/directory?path=`` Kestra's
  ``FileAttributes`` (``fileName``, ``lastModifiedTime``, ``creationTime`` in epoch
  milliseconds, ``type`` File | Directory, ``size``); the root folder is created when first
  asked for, as Kestra does;
- ``GET .../files/search?q=`` the paths containing ``q``;
- ``POST .../files?path=`` (multipart ``fileContent``) stores a file; a ``.zip`` upload stores
  each of its files under its own path; ``POST .../files/directory?path=`` makes a folder;
- ``PUT .../files?from=&to=`` moves a file or folder; ``DELETE .../files?path=`` deletes one
  (a folder with all it holds);
- ``GET .../files/export`` a zip of every file.

Files live in internal storage (:mod:`engine.stores.nsfiles`), which the API reads and writes
directly like the workers do: namespace files are not execution state, so no command is
involved. What Kestra does and Headwater does not: revisions (``/files/revisions`` and
``revision=`` are not served: one version is kept), and the ``_flows/`` folder of an upload or
export (flows are deployed through ``/api/v1/flows``; such a path is refused, as Kestra refuses
it everywhere else).
"""

from __future__ import annotations

import asyncio
import io
import re
import zipfile
from typing import Annotated, Any

from fastapi import APIRouter, Query, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from engine.api.problems import ProblemError, problem_responses
from engine.api.services import ApiServices
from engine.stores.nsfiles import NamespaceFile, NamespaceFileNotFound, NamespaceFiles
from engine.stores.storage import LocalStorage, StorageError, storage_dir

_FORBIDDEN = re.compile(r"^/?_flows(/.*)?$")
# A zip upload is read whole (it arrives within the API's body limit); its files go one by one.
_ZIP_SUFFIX = ".zip"
# Writes answer 200 with no body, as Kestra's (void) controller methods do; documented so.
_DONE: dict[str, Any] = {"description": "Done (no body)"}
_EMPTY: dict[str, Any] = {"response_class": Response, "responses": {200: _DONE}}


class FileAttributes(BaseModel):
    """Kestra's ``FileAttributes`` of a namespace file or folder."""

    fileName: str = Field(description="The last part of the path.")
    lastModifiedTime: int = Field(description="Epoch milliseconds.")
    creationTime: int = Field(description="Epoch milliseconds (the last change, here).")
    type: str = Field(description="File or Directory.")
    size: int = Field(description="Bytes (0 for a folder).")


def _attributes(entry: NamespaceFile) -> FileAttributes:
    millis = int(entry.modified * 1000)
    return FileAttributes(
        fileName=entry.path.rsplit("/", 1)[-1],
        lastModifiedTime=millis,
        creationTime=millis,
        type="Directory" if entry.is_dir else "File",
        size=entry.size,
    )


def _guard(path: str | None) -> str:
    value = path or "/"
    if _FORBIDDEN.match(value):
        raise ProblemError(
            422, "Forbidden path", f"'{value}': flows are managed through /api/v1/flows"
        )
    return value


def _invalid(exc: StorageError) -> ProblemError:
    return ProblemError(422, "Invalid namespace file request", exc.message)


def router(services: ApiServices) -> APIRouter:
    api = APIRouter(
        prefix="/namespaces/{namespace}/files",
        tags=["namespace files"],
        responses=problem_responses(400, 401, 404, 422),
    )
    holder: dict[str, NamespaceFiles] = {}

    def files() -> NamespaceFiles:
        if "nsfiles" not in holder:
            root = storage_dir(services.settings.worker.storage_dir)
            holder["nsfiles"] = NamespaceFiles(LocalStorage(root))
        return holder["nsfiles"]

    async def call(fn: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except NamespaceFileNotFound:
            raise
        except StorageError as exc:
            raise _invalid(exc) from exc

    @api.get(
        "",
        summary="Get a namespace file's content",
        response_class=FileResponse,
        responses={200: {"content": {"application/octet-stream": {}}}},
    )
    async def get_file_content(namespace: str, path: Annotated[str, Query()]) -> FileResponse:
        entry: NamespaceFile = await call(files().stat_sync, namespace, _guard(path))
        if entry.is_dir:
            raise ProblemError(422, "Not a file", f"'{entry.path}' is a folder")
        return FileResponse(
            entry.local,
            media_type="application/octet-stream",
            headers={"Cache-Control": "no-cache"},
        )

    @api.get("/stats", response_model=FileAttributes, summary="A namespace file's attributes")
    async def get_file_stats(namespace: str, path: str | None = None) -> FileAttributes:
        target = _guard(path)
        if target in ("", "/"):
            await call(files().mkdir_sync, namespace, "/")
        return _attributes(await call(files().stat_sync, namespace, target))

    @api.get(
        "/directory",
        response_model=list[FileAttributes],
        summary="The files and folders in a folder",
    )
    async def list_directory(namespace: str, path: str | None = None) -> list[FileAttributes]:
        entries = await call(files().children_sync, namespace, _guard(path))
        return [_attributes(e) for e in entries]

    @api.post("/directory", summary="Create a folder", **_EMPTY)
    async def create_directory(namespace: str, path: str | None = None) -> Response:
        await call(files().mkdir_sync, namespace, _guard(path))
        return Response(status_code=200)

    @api.get("/search", response_model=list[str], summary="Paths of files containing q")
    async def search(namespace: str, q: str) -> list[str]:
        entries = await call(files().all_files_sync, namespace)
        return [e.path for e in entries if q in e.path]

    @api.post(
        "",
        summary="Upload a file (a .zip is unpacked)",
        response_class=Response,
        responses={200: _DONE, **problem_responses(413)},
    )
    async def create_file(namespace: str, path: str, fileContent: UploadFile) -> Response:
        target = _guard(path)
        if (fileContent.filename or "").lower().endswith(_ZIP_SUFFIX):
            data = await fileContent.read()
            await call(_unzip, files(), namespace, data)
        else:
            await call(files().put_sync, namespace, target, fileContent.file)
        return Response(status_code=200)

    @api.put("", summary="Move a file or folder", **_EMPTY)
    async def move(
        namespace: str,
        source: Annotated[str, Query(alias="from")],
        to: str,
    ) -> Response:
        await call(files().move_sync, namespace, _guard(source), _guard(to))
        return Response(status_code=200)

    @api.delete("", summary="Delete a file, or a folder and everything in it", **_EMPTY)
    async def delete(namespace: str, path: str) -> Response:
        gone = await call(files().delete_sync, namespace, _guard(path))
        if not gone:
            raise NamespaceFileNotFound(
                f"namespace file '{path}' does not exist in namespace '{namespace}'"
            )
        return Response(status_code=200)

    @api.get(
        "/export",
        summary="A zip of every file of the namespace",
        response_class=Response,
        responses={200: {"content": {"application/octet-stream": {}}}},
    )
    async def export(namespace: str) -> Response:
        data = await call(_zip, files(), namespace)
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{namespace}_files.zip"'},
        )

    return api


def _unzip(store: NamespaceFiles, namespace: str, data: bytes) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise StorageError(f"the uploaded .zip is not a zip archive: {exc}") from exc
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            if _FORBIDDEN.match("/" + info.filename.lstrip("/")):
                raise StorageError(f"'{info.filename}': flows are managed through /api/v1/flows")
            with archive.open(info) as stream:
                store.put_sync(namespace, "/" + info.filename, stream)


def _zip(store: NamespaceFiles, namespace: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in store.all_files_sync(namespace):
            archive.write(entry.local, entry.path.lstrip("/"))
    return buffer.getvalue()
