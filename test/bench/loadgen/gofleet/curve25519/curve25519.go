// This file replaces golang.org/x/crypto/curve25519/curve25519.go in gofleet's build only (a patched copy of the
// module, see fleet.ts and test/peers/go-build.ts), to make the load generator lighter without changing a byte
// it sends.
//
// The upstream X25519 wraps crypto/ecdh, whose NewPrivateKey multiplies the base point to derive a public key
// that X25519 never uses: every Diffie-Hellman costs two scalar multiplications. tailscale's Noise handshake
// (control/controlbase) does four of them per client, so four of its ten multiplications were that waste, and
// X25519 was half of gofleet's CPU. Here X25519 is one Montgomery ladder (RFC 7748, section 5; the ladder
// x/crypto itself used before it wrapped crypto/ecdh), on filippo.io/edwards25519's field arithmetic. The
// exported API and its errors are the upstream ones; curve25519_test.go checks the results against crypto/ecdh.
package curve25519

import (
	"crypto/ecdh"
	"crypto/subtle"
	"errors"
	"sync"

	"filippo.io/edwards25519/field"
)

// ScalarMult sets dst to the product scalar * point.
//
// Deprecated: when provided a low-order point, ScalarMult will set dst to all
// zeroes, irrespective of the scalar. Instead, use the X25519 function, which
// will return an error.
func ScalarMult(dst, scalar, point *[32]byte) {
	ladder(dst, scalar, point)
}

// ScalarBaseMult sets dst to the product scalar * base where base is the
// standard generator.
//
// Results are kept by scalar: tailscale's client derives its machine key's public half on every dial
// (key.MachinePrivate.Public in controlbase.ClientDeferred), and each node of the fleet has one machine key.
// The handshakes' ephemeral keys are kept too, never asked for again: ~100 bytes per dial.
func ScalarBaseMult(dst, scalar *[32]byte) {
	if p, ok := basePoints.Load(*scalar); ok {
		*dst = p.([32]byte)
		return
	}
	scalarBaseMult(dst, scalar)
	basePoints.Store(*scalar, *dst)
}

var basePoints sync.Map

func scalarBaseMult(dst, scalar *[32]byte) {
	curve := ecdh.X25519()
	priv, err := curve.NewPrivateKey(scalar[:])
	if err != nil {
		panic("curve25519: " + err.Error())
	}
	copy(dst[:], priv.PublicKey().Bytes())
}

const (
	// ScalarSize is the size of the scalar input to X25519.
	ScalarSize = 32
	// PointSize is the size of the point input to X25519.
	PointSize = 32
)

// Basepoint is the canonical Curve25519 generator.
var Basepoint []byte

var basePoint = [32]byte{9}

func init() { Basepoint = basePoint[:] }

// X25519 returns the result of the scalar multiplication (scalar * point),
// according to RFC 7748, Section 5. scalar, point and the return value are
// slices of 32 bytes.
func X25519(scalar, point []byte) ([]byte, error) {
	var dst [32]byte
	return x25519(&dst, scalar, point)
}

func x25519(dst *[32]byte, scalar, point []byte) ([]byte, error) {
	// The same errors as crypto/ecdh's NewPrivateKey, NewPublicKey and ECDH.
	if len(scalar) != ScalarSize {
		return nil, errors.New("crypto/ecdh: invalid private key size")
	}
	if len(point) != PointSize {
		return nil, errors.New("crypto/ecdh: invalid public key")
	}
	ladder(dst, (*[32]byte)(scalar), (*[32]byte)(point))
	var zero [32]byte
	if subtle.ConstantTimeCompare(dst[:], zero[:]) == 1 {
		return nil, errors.New("crypto/ecdh: bad X25519 remote ECDH input: low order point")
	}
	return dst[:], nil
}

// ladder computes the clamped scalar times the point's u-coordinate in constant time.
func ladder(dst, scalar, point *[32]byte) {
	var e [32]byte
	copy(e[:], scalar[:])
	e[0] &= 248
	e[31] &= 127
	e[31] |= 64

	var x1, x2, z2, x3, z3, tmp0, tmp1 field.Element
	if _, err := x1.SetBytes(point[:]); err != nil {
		panic(err) // unreachable: point is 32 bytes
	}
	x2.One()
	x3.Set(&x1)
	z3.One()

	swap := 0
	for pos := 254; pos >= 0; pos-- {
		b := int(e[pos/8]>>uint(pos&7)) & 1
		swap ^= b
		x2.Swap(&x3, swap)
		z2.Swap(&z3, swap)
		swap = b

		tmp0.Subtract(&x3, &z3)
		tmp1.Subtract(&x2, &z2)
		x2.Add(&x2, &z2)
		z2.Add(&x3, &z3)
		z3.Multiply(&tmp0, &x2)
		z2.Multiply(&z2, &tmp1)
		tmp0.Square(&tmp1)
		tmp1.Square(&x2)
		x3.Add(&z3, &z2)
		z2.Subtract(&z3, &z2)
		x2.Multiply(&tmp1, &tmp0)
		tmp1.Subtract(&tmp1, &tmp0)
		z2.Square(&z2)

		z3.Mult32(&tmp1, 121666)
		x3.Square(&x3)
		tmp0.Add(&tmp0, &z3)
		z3.Multiply(&x1, &z2)
		z2.Multiply(&tmp1, &tmp0)
	}

	x2.Swap(&x3, swap)
	z2.Swap(&z3, swap)

	z2.Invert(&z2)
	x2.Multiply(&x2, &z2)
	copy(dst[:], x2.Bytes())
}
