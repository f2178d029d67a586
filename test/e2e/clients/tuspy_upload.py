"""Drives tuspy (the Python tus client) for test/e2e/tuspy.test.ts; prints one JSON line per run.

  upload ENDPOINT FILE CHUNK [--checksum] [--async] [--meta KEY=VALUE ...]   whole upload
  start ENDPOINT FILE CHUNK                                                   first chunk only, then stop
  resume URL FILE CHUNK                                                       a new Uploader continues URL
  retry ENDPOINT FILE CHUNK                                                   upload with tuspy's retries on
  outage ENDPOINT FILE CHUNK       first chunk, a line, waits for a line on stdin, then the rest with retries
"""

import asyncio
import json
import sys

from tusclient import client


def parse_meta(args):
    metadata = {}
    for arg in args:
        key, _, value = arg.partition("=")
        metadata[key] = value
    return metadata


def main(argv):
    command, target, file_path, chunk = argv[0], argv[1], argv[2], int(argv[3])
    flags = [arg for arg in argv[4:] if arg.startswith("--") and arg != "--meta"]
    metadata = parse_meta(argv[argv.index("--meta") + 1 :]) if "--meta" in argv else {}

    if command == "upload":
        tus = client.TusClient(target)
        options = dict(file_path=file_path, chunk_size=chunk, metadata=metadata, upload_checksum="--checksum" in flags)
        if "--async" in flags:
            uploader = tus.async_uploader(**options)
            asyncio.run(uploader.upload())
        else:
            uploader = tus.uploader(**options)
            uploader.upload()
        return {"url": uploader.url, "offset": uploader.offset}

    if command == "start":
        uploader = client.TusClient(target).uploader(file_path=file_path, chunk_size=chunk, metadata=metadata)
        uploader.upload_chunk()
        return {"url": uploader.url, "offset": uploader.offset}

    if command == "resume":
        # No TusClient: an Uploader given only the url asks the server for the offset (HEAD) at construction.
        from tusclient.uploader import Uploader

        uploader = Uploader(file_path=file_path, url=target, chunk_size=chunk)
        resumed_from = uploader.offset
        uploader.upload()
        return {"url": uploader.url, "resumedFrom": resumed_from, "offset": uploader.offset}

    if command == "retry":
        from tusclient.uploader import Uploader

        asked = []

        class RecordingUploader(Uploader):
            # tuspy asks the server for the offset (HEAD) before each retry; record what it answered.
            def get_offset(self):
                offset = super().get_offset()
                asked.append(offset)
                return offset

        tus = client.TusClient(target)
        uploader = RecordingUploader(file_path=file_path, client=tus, chunk_size=chunk, retries=3, retry_delay=0)
        uploader.upload()
        return {"url": uploader.url, "offset": uploader.offset, "resumedFrom": asked}

    if command == "outage":
        # The test takes the server's backend away between the two halves; tuspy retries every 0.5 s (HEAD, then
        # the PATCH again) for up to 30 tries per chunk.
        uploader = client.TusClient(target).uploader(
            file_path=file_path, chunk_size=chunk, retries=30, retry_delay=0.5
        )
        uploader.upload_chunk()
        print(json.dumps({"url": uploader.url, "offset": uploader.offset}), flush=True)
        sys.stdin.readline()
        uploader.upload()
        return {"url": uploader.url, "offset": uploader.offset}

    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
