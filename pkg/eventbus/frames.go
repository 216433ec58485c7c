package eventbus

import (
	"encoding/binary"
	"fmt"
)

// Batches (ContentTypeFanoutBatch, ContentTypeAttemptBatch) are framed the
// protodelim way: each message preceded by its length as a uvarint.

// sizedVT is a message of the generated vtprotobuf code that encodes itself
// into a buffer of its exact size.
type sizedVT interface {
	MarshalToSizedBufferVT([]byte) (int, error)
}

// appendFrames encodes msgs, of the sizes given (their SizeVT), into one
// framed buffer, each straight into its place: no buffer of its own per
// message.
func appendFrames[M sizedVT](msgs []M, sizes []int) ([]byte, error) {
	n := 0
	for _, size := range sizes {
		n += binary.MaxVarintLen32 + size
	}
	data := make([]byte, 0, n)
	for i, m := range msgs {
		data = binary.AppendUvarint(data, uint64(sizes[i]))
		start := len(data)
		data = data[:start+sizes[i]]
		if _, err := m.MarshalToSizedBufferVT(data[start:]); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// eachFrame calls fn with each frame of data, in order, and stops at the
// first error; what names a frame in the error of a bad length.
func eachFrame(data []byte, what string, fn func(i int, frame []byte) error) error {
	for i := 0; len(data) > 0; i++ {
		n, k := binary.Uvarint(data)
		if k <= 0 || n > uint64(len(data)-k) {
			return fmt.Errorf("bad length at %s %d", what, i)
		}
		if err := fn(i, data[k:k+int(n)]); err != nil {
			return err
		}
		data = data[k+int(n):]
	}
	return nil
}
