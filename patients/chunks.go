package patients

import (
	"context"
	"io"
)

// PhotoChunk is how many bytes of a photo a database store reads at a
// time, so that serving a photo holds one chunk in memory, not the photo.
const PhotoChunk = 256 << 10

// NewChunkReader streams size bytes that read returns a chunk at a time,
// from offset 0 on. Stores use it to stream a BLOB or bytea column with
// SUBSTRING queries. A value that ends early (deleted meanwhile) is an
// io.ErrUnexpectedEOF.
func NewChunkReader(ctx context.Context, size int64, read func(ctx context.Context, off int64, n int) ([]byte, error)) io.ReadCloser {
	return &chunkReader{ctx: ctx, size: size, read: read}
}

type chunkReader struct {
	ctx  context.Context
	size int64
	off  int64
	buf  []byte
	read func(ctx context.Context, off int64, n int) ([]byte, error)
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if r.off >= r.size {
			return 0, io.EOF
		}
		b, err := r.read(r.ctx, r.off, int(min(PhotoChunk, r.size-r.off)))
		if err != nil {
			return 0, err
		}
		if len(b) == 0 {
			return 0, io.ErrUnexpectedEOF
		}
		r.buf = b
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	r.off += int64(n)
	return n, nil
}

func (r *chunkReader) Close() error { return nil }
