"""moto's server mode for the tests (scripts/services/s3.sh), one request at a time.

moto's S3 backend is not safe under its threaded server: a key's ETag is read from the key's buffer without the
lock GET reads it under, and multipart parts are listed while others are added; under the test suite's
concurrency a ranged GET answered short and a listed upload missed a part now and then. Served without threads
(werkzeug then speaks HTTP/1.0, closing each connection, so no client holds the server), every request still
goes through the real S3 HTTP API, one after the other.
"""
import sys

import moto.server
from werkzeug.serving import run_simple


def _unthreaded(*args, **kwargs):
    kwargs["threaded"] = False
    return run_simple(*args, **kwargs)


moto.server.run_simple = _unthreaded

if __name__ == "__main__":
    moto.server.main(sys.argv[1:])
