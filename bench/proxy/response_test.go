package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestRespReader(t *testing.T) {
	type want struct {
		status    int
		keepAlive bool
	}
	tests := []struct {
		name  string
		input string
		want  []want
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", []want{{200, true}}},
		{"two in a row", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhiHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
			[]want{{200, true}, {404, true}}},
		{"chunked with extension and trailer",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n" +
				"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
			[]want{{200, true}, {201, true}}},
		{"connection close", "HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbad", []want{{502, false}}},
		{"HTTP/1.0 default close", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", []want{{200, false}}},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx", []want{{200, true}}},
		{"body to EOF", "HTTP/1.1 200 OK\r\n\r\nall of the rest", []want{{200, false}}},
		{"interim response skipped", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", []want{{200, true}}},
		{"no body on 204", "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n" +
			"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", []want{{204, true}, {200, true}}},
		{"body larger than the buffer", "HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n" + strings.Repeat("z", 300) +
			"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", []want{{200, true}, {200, true}}},
	}
	for _, tt := range tests {
		// Whole reads and one-byte reads must give the same answers.
		for _, oneByte := range []bool{false, true} {
			var rd io.Reader = strings.NewReader(tt.input)
			if oneByte {
				rd = iotest.OneByteReader(rd)
			}
			p := newRespReader(rd, 128)
			for i, w := range tt.want {
				status, keepAlive, err := p.next()
				if err != nil || status != w.status || keepAlive != w.keepAlive {
					t.Fatalf("%s (one byte reads: %v), response %d: got %d, %v, %v; want %d, %v",
						tt.name, oneByte, i, status, keepAlive, err, w.status, w.keepAlive)
				}
			}
			if tt.want[len(tt.want)-1].keepAlive {
				if _, _, err := p.next(); err != io.EOF {
					t.Errorf("%s: after the last response got %v, want EOF", tt.name, err)
				}
			}
		}
	}
}

func TestRespReaderErrors(t *testing.T) {
	tests := []struct {
		name, input string
		want        error
	}{
		{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", io.ErrUnexpectedEOF},
		{"truncated head", "HTTP/1.1 200 OK\r\nContent-Len", io.ErrUnexpectedEOF},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", errMalformed},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", errMalformed},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", errMalformed},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", errMalformed},
		{"missing chunk CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n", errMalformed},
		{"header line too long", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 200) + "\r\n\r\n", errHeadTooLarge},
	}
	for _, tt := range tests {
		p := newRespReader(strings.NewReader(tt.input), 128)
		if _, _, err := p.next(); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestRespReaderAllocs(t *testing.T) {
	resp := okResponse
	r := strings.NewReader("")
	p := newRespReader(r, 16<<10)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(string(resp))
		p.reset(r)
		if status, _, err := p.next(); err != nil || status != 200 {
			t.Fatalf("got %d, %v", status, err)
		}
	})
	// strings.Reader.Reset(string(resp)) allocates the string; the parser
	// itself must not allocate.
	if allocs > 1 {
		t.Errorf("reading a response allocated %.0f times", allocs)
	}
}

func TestBackendAnswer(t *testing.T) {
	head := []byte("GET /miss/bench HTTP/1.1\r\nHost: x\r\nContent-Length: 0")
	if resp, _, keep := answer(head, true, nil); &resp[0] != &notFoundResponse[0] || !keep {
		t.Error("modern should answer 404 for the miss path")
	}
	if resp, _, _ := answer(head, false, nil); &resp[0] != &okResponse[0] {
		t.Error("legacy should answer 200 for every path")
	}
	if _, _, keep := answer([]byte("GET /x HTTP/1.1\r\nContent-Length: 3"), false, nil); keep {
		t.Error("a GET with a body should be refused and the connection closed")
	}
	if _, _, keep := answer([]byte("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked"), false, nil); keep {
		t.Error("a chunked body should be refused and the connection closed")
	}
	resp, bodyLen, keep := answer([]byte("POST /bench HTTP/1.1\r\nHost: x\r\ncontent-length: 17"), true, nil)
	if !keep || bodyLen != 17 {
		t.Errorf("POST: got body length %d, keep-alive %v; want 17, true", bodyLen, keep)
	}
	st, ka, err := newRespReader(strings.NewReader(string(resp)), 256).next()
	if err != nil || st != 201 || !ka || !strings.Contains(string(resp), `{"id":`) {
		t.Errorf("POST answered %q (%d, %v, %v); want 201 with an id", resp, st, ka, err)
	}
	for _, r := range [][]byte{okResponse, okResponseModern} {
		if len(r)-strings.Index(string(r), "\r\n\r\n")-4 != 1024 {
			t.Error("the bench body should be 1 KiB")
		}
	}
	legacy, modern := benchBody(false), benchBody(true)
	var a, b any
	if json.Unmarshal(legacy, &a) != nil || json.Unmarshal(modern, &b) != nil || !reflect.DeepEqual(a, b) || bytes.Equal(legacy, modern) {
		t.Errorf("legacy and modern should answer the same JSON in different bytes:\n%s\n%s", legacy, modern)
	}
}

// TestBackendBody checks that a connection skips a request body that
// arrives in pieces and serves the next request on it.
func TestBackendBody(t *testing.T) {
	client, server := net.Pipe()
	go serveBackendConn(server, false)
	defer client.Close()
	client.SetDeadline(time.Now().Add(5 * time.Second))
	body := strings.Repeat("b", 20000)
	go func() {
		io.WriteString(client, "POST /bench HTTP/1.1\r\nContent-Length: 20000\r\n\r\n"+body[:100])
		io.WriteString(client, body[100:]+"GET /bench HTTP/1.1\r\n\r\n")
	}()
	rr := newRespReader(client, 4096)
	for _, want := range []int{201, 200} {
		if st, _, err := rr.next(); err != nil || st != want {
			t.Fatalf("got %d, %v; want %d", st, err, want)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.quantile(c.q)
		if diff := float64(got-c.want) / float64(c.want); diff < -0.01 || diff > 0.01 {
			t.Errorf("quantile(%v) = %v, want %v within 1%%", c.q, got, c.want)
		}
	}
	// Every value lands in a bucket that contains it.
	for _, v := range []uint64{0, 1, 127, 128, 255, 256, 257, 1000, 123456789, 1<<maxBits - 1} {
		low, width := bucketRange(bucketOf(v))
		if v < low || v >= low+width {
			t.Errorf("value %d in bucket [%d, %d)", v, low, low+width)
		}
	}
}
