package store

import "testing"

// SetChunks makes Range and Compact work in small transactions for the test.
func SetChunks(t *testing.T, rangeN, compactN int) {
	oldRange, oldCompact := rangeChunk, compactChunk
	rangeChunk, compactChunk = rangeN, compactN
	t.Cleanup(func() { rangeChunk, compactChunk = oldRange, oldCompact })
}

// Internal codec entry points, for codec_test.go.
var (
	DecodeFast     = decodeFast
	DecodeEnvelope = decodeEnvelope
	ParseUTC       = parseUTC
	EncodeEnvelope = encodeEnvelope
)
