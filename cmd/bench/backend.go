package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strconv"
	"strings"
)

// The backend is deliberately cheap so that the proxy's cost dominates:
// raw TCP, one goroutine per connection, a request head found by scanning
// for CRLFCRLF, and a pre-built response written with one system call. It
// understands keep-alive GET requests without bodies, which is all the
// proxies under test send it; anything else is refused and the connection
// closed. It listens twice, as legacy and as modern.

// missPrefix is the path prefix modern answers 404 for (a fallback miss);
// legacy answers 200 for every path.
const missPrefix = "/miss/"

var (
	okResponse       = buildResponse("200 OK", benchBody())
	notFoundResponse = buildResponse("404 Not Found", []byte(`{"error":"not found"}`))
	badResponse      = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	crlfcrlf         = []byte("\r\n\r\n")
)

// benchBody is a 1 KiB JSON document, a typical small API answer.
func benchBody() []byte {
	const prefix, suffix = `{"id":42,"name":"bench","data":"`, `"}`
	pad := strings.Repeat("x", 1024-len(prefix)-len(suffix))
	return []byte(prefix + pad + suffix)
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
		resp, keepAlive := answer(buf[:end], modern)
		if _, err := c.Write(resp); err != nil || !keepAlive {
			return
		}
		n = copy(buf, buf[end+4:n])
	}
}

// answer picks the response to a request head (without its final CRLFCRLF).
func answer(head []byte, modern bool) (resp []byte, keepAlive bool) {
	line, fields, _ := bytes.Cut(head, crlf)
	method, rest, _ := bytes.Cut(line, []byte(" "))
	target, version, _ := bytes.Cut(rest, []byte(" "))
	if !bytes.Equal(method, []byte("GET")) || !bytes.HasPrefix(version, []byte("HTTP/1.1")) {
		return badResponse, false
	}
	keepAlive = true
	for len(fields) > 0 {
		var f []byte
		f, fields, _ = bytes.Cut(fields, crlf)
		name, value, _ := bytes.Cut(f, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")) && !bytes.Equal(value, []byte("0")),
			bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return badResponse, false // a body this backend would not read
		case bytes.EqualFold(name, []byte("Connection")) && hasToken(value, "close"):
			keepAlive = false
		}
	}
	if modern && bytes.HasPrefix(target, []byte(missPrefix)) {
		return notFoundResponse, keepAlive
	}
	return okResponse, keepAlive
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
