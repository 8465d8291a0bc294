package curve25519

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"testing"
)

// Random pairs agree with crypto/ecdh, the implementation the upstream file wraps.
func TestX25519MatchesECDH(t *testing.T) {
	curve := ecdh.X25519()
	for i := 0; i < 200; i++ {
		a, _ := curve.GenerateKey(rand.Reader)
		b, _ := curve.GenerateKey(rand.Reader)
		want, err := a.ECDH(b.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		got, err := X25519(a.Bytes(), b.PublicKey().Bytes())
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("X25519 = %x, %v; crypto/ecdh says %x", got, err, want)
		}
		pub, err := X25519(a.Bytes(), Basepoint)
		if err != nil || !bytes.Equal(pub, a.PublicKey().Bytes()) {
			t.Fatalf("X25519(basepoint) = %x, %v; want %x", pub, err, a.PublicKey().Bytes())
		}
	}
}

// RFC 7748, section 5.2, first test vector.
func TestRFC7748Vector(t *testing.T) {
	scalar, _ := hex.DecodeString("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
	point, _ := hex.DecodeString("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
	got, err := X25519(scalar, point)
	if err != nil || hex.EncodeToString(got) != "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552" {
		t.Fatalf("got %x, %v", got, err)
	}
}

// A low-order point is refused, as crypto/ecdh refuses it; wrong sizes too.
func TestRefusals(t *testing.T) {
	scalar := make([]byte, 32)
	scalar[0] = 1
	if _, err := X25519(scalar, make([]byte, 32)); err == nil {
		t.Fatal("the all-zero point was accepted")
	}
	if _, err := X25519(scalar[:31], Basepoint); err == nil {
		t.Fatal("a 31-byte scalar was accepted")
	}
	if _, err := X25519(scalar, make([]byte, 33)); err == nil {
		t.Fatal("a 33-byte point was accepted")
	}
}

func BenchmarkX25519(b *testing.B) {
	a, _ := ecdh.X25519().GenerateKey(rand.Reader)
	p, _ := ecdh.X25519().GenerateKey(rand.Reader)
	for b.Loop() {
		X25519(a.Bytes(), p.PublicKey().Bytes())
	}
}

func BenchmarkUpstream(b *testing.B) {
	curve := ecdh.X25519()
	a, _ := curve.GenerateKey(rand.Reader)
	p, _ := curve.GenerateKey(rand.Reader)
	for b.Loop() {
		priv, _ := curve.NewPrivateKey(a.Bytes())
		pub, _ := curve.NewPublicKey(p.PublicKey().Bytes())
		priv.ECDH(pub)
	}
}
