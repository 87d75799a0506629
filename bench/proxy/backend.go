package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// The backend is deliberately cheap so that the proxy's cost dominates:
// raw TCP, one goroutine per connection, a request head found by scanning
// for CRLFCRLF, and a pre-built response written with one system call. It
// understands keep-alive GET requests without bodies and POST requests
// with a Content-Length body, which is all the proxies under test send it;
// anything else is refused and the connection closed. It listens twice, as
// legacy and as modern.
//
// A GET gets a 1 KiB JSON page of patients; modern writes every object's
// keys in reverse order, so that a shadow comparison of the two answers
// has to match them structurally rather than byte for byte. A POST gets
// 201 Created and {"id":N} with a new N, as a creation would.

// missPrefix is the path prefix modern answers 404 for (a fallback miss);
// legacy answers 200 for every path.
const missPrefix = "/miss/"

// maxRequestBody is the largest request body the backend reads.
const maxRequestBody = 1 << 20

var (
	okResponse       = buildResponse("200 OK", benchBody(false))
	okResponseModern = buildResponse("200 OK", benchBody(true))
	notFoundResponse = buildResponse("404 Not Found", []byte(`{"error":"not found"}`))
	badResponse      = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	crlfcrlf         = []byte("\r\n\r\n")
	createdHead      = []byte("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: ")
	nextID           atomic.Int64
)

// benchBody is a 1 KiB JSON document, a typical small API answer: a page
// of six patients (the shape of the shadow package's Compare1KiB
// benchmark), padded to exactly 1,024 bytes with a cursor. reordered
// writes every object's keys in reverse order: the same document to a
// structural comparison, different bytes.
func benchBody(reordered bool) []byte {
	obj := func(kvs ...string) string { // key, JSON value, key, JSON value, ...
		parts := make([]string, 0, len(kvs)/2)
		for i := 0; i < len(kvs); i += 2 {
			parts = append(parts, strconv.Quote(kvs[i])+":"+kvs[i+1])
		}
		if reordered {
			slices.Reverse(parts)
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	items := make([]string, 6)
	for i := range items {
		items[i] = obj("id", strconv.Itoa(1000+i), "first_name", `"Patient"`, "last_name", strconv.Quote("Number"+strconv.Itoa(i)),
			"born", `"1970-01-01"`, "address", obj("street", `"Karl Johans gate 1"`, "city", `"Oslo"`), "active", "true")
	}
	page := func(cursor string) string {
		return obj("page", "1", "per_page", "6", "total", "600", "items", "["+strings.Join(items, ",")+"]", "cursor", strconv.Quote(cursor))
	}
	pad := 1024 - len(page(""))
	return []byte(page(strings.Repeat("c", max(pad, 0))))
}

func buildResponse(status string, body []byte) []byte {
	head := "HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n"
	return append([]byte(head), body...)
}

// runBackend is the -role backend child process. It prints its two
// addresses on one line once it is listening.
func runBackend() error {
	// One P: the backend gets at most one core's worth of scheduling, and
	// the proxy under test keeps the rest of the machine.
	runtime.GOMAXPROCS(1)
	legacy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	modern, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("backend legacy=%s modern=%s\n", legacy.Addr(), modern.Addr())
	errc := make(chan error, 2)
	go func() { errc <- acceptLoop(legacy, false) }()
	go func() { errc <- acceptLoop(modern, true) }()
	return <-errc
}

func acceptLoop(ln net.Listener, modern bool) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go serveBackendConn(c, modern)
	}
}

func serveBackendConn(c net.Conn, modern bool) {
	defer c.Close()
	buf := make([]byte, 8<<10)
	scratch := make([]byte, 0, 256)
	n := 0
	for {
		end := bytes.Index(buf[:n], crlfcrlf)
		if end < 0 {
			if n == len(buf) {
				c.Write(badResponse)
				return
			}
			m, err := c.Read(buf[n:])
			if err != nil {
				return
			}
			n += m
			continue
		}
		resp, bodyLen, keepAlive := answer(buf[:end], modern, scratch[:0])
		// Skip the body: what is buffered already, then the rest.
		rest := buf[end+4 : n]
		k := min(bodyLen, len(rest))
		n = copy(buf, rest[k:])
		for left := bodyLen - k; left > 0; {
			m, err := c.Read(buf[:min(left, len(buf))])
			if err != nil {
				return
			}
			left -= m
		}
		if _, err := c.Write(resp); err != nil || !keepAlive {
			return
		}
	}
}

// answer picks the response to a request head (without its final CRLFCRLF)
// and says how long the request's body is. A POST's answer is built in
// scratch.
func answer(head []byte, modern bool, scratch []byte) (resp []byte, bodyLen int, keepAlive bool) {
	line, fields, _ := bytes.Cut(head, crlf)
	method, rest, _ := bytes.Cut(line, []byte(" "))
	target, version, _ := bytes.Cut(rest, []byte(" "))
	post := bytes.Equal(method, []byte("POST"))
	if !post && !bytes.Equal(method, []byte("GET")) || !bytes.HasPrefix(version, []byte("HTTP/1.1")) {
		return badResponse, 0, false
	}
	keepAlive = true
	for len(fields) > 0 {
		var f []byte
		f, fields, _ = bytes.Cut(fields, crlf)
		name, value, _ := bytes.Cut(f, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, ok := parseDecimal(value)
			if !ok || n > maxRequestBody || n > 0 && !post {
				return badResponse, 0, false // a body this backend would not read
			}
			bodyLen = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return badResponse, 0, false
		case bytes.EqualFold(name, []byte("Connection")) && hasToken(value, "close"):
			keepAlive = false
		}
	}
	switch {
	case post:
		var digits [20]byte
		id := strconv.AppendInt(digits[:0], nextID.Add(1), 10)
		resp = append(scratch[:0], createdHead...)
		resp = strconv.AppendInt(resp, int64(len(`{"id":}`)+len(id)), 10)
		resp = append(resp, "\r\n\r\n{\"id\":"...)
		resp = append(append(resp, id...), '}')
		return resp, bodyLen, keepAlive
	case modern && bytes.HasPrefix(target, []byte(missPrefix)):
		return notFoundResponse, bodyLen, keepAlive
	case modern:
		return okResponseModern, bodyLen, keepAlive
	}
	return okResponse, bodyLen, keepAlive
}

// runBareProxy is the -role bareproxy child process: the reverse proxy
// every Go proxy starts from. Its only tuning is 256 idle upstream
// connections per host (MaxIdleConns stays at DefaultTransport's 100); the
// server is net/http's default one.
func runBareProxy(target string) error {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("bad -target %q", target)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	proxy := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport: tr,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	return http.Serve(ln, proxy)
}
