// The bench's physical limit: the least a server can do to take an upload over loopback and put it in the page
// cache. It speaks just enough tus 1.0 for bench/load.mjs to drive it like the real servers (POST creates an
// empty file and answers 201 with its Location, PATCH writes its body at Upload-Offset and answers 204 with the
// new offset, HEAD reports the file's size), over HTTP/1.1 with keep-alive and Content-Length bodies only. It
// validates nothing, locks nothing, keeps no info file and never flushes: whatever a tus server does beyond
// this is its own cost, and what is left is the machine's (the socket, one copy into the page cache).
//
// A PATCH body is read from the socket into a 64 KiB buffer and written from it to the file, one goroutine per
// connection. Measured on the bench's 2-core VM (interleaved rounds, 256 MiB uploads), that was the fastest
// and the cheapest in CPU of what was tried: a buffer that stays in the CPU's cache between the read and the
// write. A 1 MiB buffer cost up to 5 times the CPU on one large PATCH (the second copy reads memory, not the
// cache), and splice(2) from the socket to the file (-mode splice; Go's File.ReadFrom does it for a TCP source,
// one copy instead of two) was 3 times slower there, at 3 times the CPU of a 64 KiB copy.
//
// Usage: sink -port P -dir D [-host 127.0.0.1] [-mode copy|splice] [-buffer 65536]
// Standard library only: bench/setup.sh builds it with GOPROXY=off.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
)

const prefix = "/files/"

var (
	directory  string
	splice     bool
	bufferSize int
)

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on (loopback only)")
	port := flag.Int("port", 1092, "port to listen on")
	dir := flag.String("dir", "", "folder the uploads are written to")
	mode := flag.String("mode", "copy", "copy (through a buffer) or splice (socket to file in the kernel)")
	buffer := flag.Int("buffer", 64<<10, "bytes read from the socket at a time in -mode copy")
	flag.Parse()
	if *dir == "" {
		log.Fatal("sink: -dir is required")
	}
	if ip := net.ParseIP(*host); *host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Fatalf("sink: listens on loopback only, not %s", *host)
	}
	if *mode != "splice" && *mode != "copy" {
		log.Fatalf("sink: -mode is splice or copy, not %s", *mode)
	}
	directory, splice, bufferSize = *dir, *mode == "splice", *buffer
	if err := os.MkdirAll(directory, 0o755); err != nil {
		log.Fatal(err)
	}
	listener, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		log.Fatal(err)
	}
	// With -port 0 this is how a caller learns the port.
	fmt.Printf("sink: listening on %s\n", listener.Addr())
	for {
		conn, err := listener.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go serve(conn.(*net.TCPConn))
	}
}

// request is what the sink reads of a request head.
type request struct {
	method, path  string
	contentLength int64
	uploadOffset  int64
	close         bool
}

// serve answers the requests of one keep-alive connection in turn until the client closes it or cuts a body.
func serve(conn *net.TCPConn) {
	defer conn.Close()
	reader := bufio.NewReaderSize(conn, 64*1024)
	var buffer []byte // for -mode copy, made on the first PATCH of the connection
	for {
		req, err := readHead(reader)
		if err != nil {
			return
		}
		status, offset, location := 404, int64(-1), ""
		switch {
		case req.method == "POST" && req.path == prefix:
			location, err = create()
			status, offset = 201, 0
		case req.method == "PATCH" && validID(req.path):
			if buffer == nil && !splice {
				buffer = make([]byte, bufferSize)
			}
			offset, err = write(filepath.Join(directory, req.path[len(prefix):]), req, reader, conn, buffer)
			status = 204
		case req.method == "HEAD" && validID(req.path):
			var info os.FileInfo
			info, err = os.Stat(filepath.Join(directory, req.path[len(prefix):]))
			if err == nil {
				status, offset = 200, info.Size()
			}
		case req.method == "OPTIONS":
			status = 204
		}
		if err != nil {
			// A cut body leaves what arrived in the file; the connection cannot carry another request.
			return
		}
		if status == 404 && req.contentLength > 0 {
			return // an unread body would be taken for the next request
		}
		if _, err = conn.Write(answer(status, offset, location, req.close)); err != nil || req.close {
			return
		}
	}
}

func readHead(reader *bufio.Reader) (request, error) {
	line, err := reader.ReadString('\n')
	if err != nil {
		return request{}, err
	}
	fields := strings.Fields(line)
	if len(fields) != 3 {
		return request{}, fmt.Errorf("bad request line %q", line)
	}
	req := request{method: fields[0], path: fields[1], close: fields[2] == "HTTP/1.0"}
	for {
		line, err = reader.ReadString('\n')
		if err != nil {
			return request{}, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return req, nil
		}
		name, value, found := strings.Cut(line, ":")
		if !found {
			return request{}, fmt.Errorf("bad header %q", line)
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "content-length":
			req.contentLength, err = strconv.ParseInt(value, 10, 64)
		case "upload-offset":
			req.uploadOffset, err = strconv.ParseInt(value, 10, 64)
		case "transfer-encoding":
			err = errors.New("only Content-Length bodies")
		case "connection":
			req.close = strings.EqualFold(value, "close")
		}
		if err != nil {
			return request{}, err
		}
	}
}

func validID(path string) bool {
	id, found := strings.CutPrefix(path, prefix)
	return found && len(id) == 32 && strings.Trim(id, "0123456789abcdef") == ""
}

// lastID numbers the uploads: each run of the sink starts in an empty folder, and O_EXCL catches a clash.
var lastID atomic.Uint64

func create() (string, error) {
	id := fmt.Sprintf("%032x", lastID.Add(1))
	file, err := os.OpenFile(filepath.Join(directory, id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	return prefix + id, file.Close()
}

// write puts the body at the request's Upload-Offset and returns the offset after it. The bytes the reader
// already holds go first; the rest comes straight from the socket.
func write(path string, req request, reader *bufio.Reader, conn *net.TCPConn, buffer []byte) (int64, error) {
	file, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return 0, err
	}
	defer file.Close()
	if _, err = file.Seek(req.uploadOffset, io.SeekStart); err != nil {
		return 0, err
	}
	held := min(int64(reader.Buffered()), req.contentLength)
	if held > 0 {
		head, _ := reader.Peek(int(held))
		if _, err = file.Write(head); err != nil {
			return 0, err
		}
		reader.Discard(int(held))
	}
	rest := req.contentLength - held
	var written int64
	if splice {
		// An io.LimitedReader over the *net.TCPConn is what File.ReadFrom turns into splice(2) on Linux.
		written, err = file.ReadFrom(&io.LimitedReader{R: conn, N: rest})
	} else {
		written, err = io.CopyBuffer(onlyWriter{file}, &io.LimitedReader{R: conn, N: rest}, buffer)
	}
	if err == nil && written < rest {
		err = io.ErrUnexpectedEOF
	}
	return req.uploadOffset + held + written, err
}

// onlyWriter hides File.ReadFrom from io.CopyBuffer, so -mode copy does go through the buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

var reasons = map[int]string{200: "OK", 201: "Created", 204: "No Content", 404: "Not Found"}

func answer(status int, offset int64, location string, close bool) []byte {
	var out bytes.Buffer
	fmt.Fprintf(&out, "HTTP/1.1 %d %s\r\nTus-Resumable: 1.0.0\r\n", status, reasons[status])
	if location != "" {
		fmt.Fprintf(&out, "Location: %s\r\n", location)
	}
	if offset >= 0 {
		fmt.Fprintf(&out, "Upload-Offset: %d\r\n", offset)
	}
	if status != 204 {
		out.WriteString("Content-Length: 0\r\n")
	}
	if close {
		out.WriteString("Connection: close\r\n")
	}
	out.WriteString("\r\n")
	return out.Bytes()
}
