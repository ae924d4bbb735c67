package secrets

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// envelopeMagic starts every envelope file; the digit after "v" is the format version.
const (
	envelopeMagic     = "berth-envelope v"
	envelopeVersion   = "1"
	envelopeAlg       = "AES-256-GCM"
	maxEnvelopeHeader = 64 << 10
	// MaxRawKMS is KMS Encrypt's plaintext limit; larger inputs need the envelope format.
	MaxRawKMS = 4096
)

// envelopeHeader is the JSON line after the magic line. All of the header (magic line included) is the GCM
// additional data, so editing the recorded key id or context breaks decryption.
type envelopeHeader struct {
	Alg     string            `json:"alg"`
	KeyID   string            `json:"key_id"`
	Context map[string]string `json:"context,omitempty"`
	DataKey []byte            `json:"data_key"` // KMS ciphertext of the 256-bit data key (base64 in JSON)
	Nonce   []byte            `json:"nonce"`    // 12-byte GCM nonce (base64 in JSON)
}

// IsEnvelope reports whether data starts with the envelope magic.
func IsEnvelope(data []byte) bool { return bytes.HasPrefix(data, []byte(envelopeMagic)) }

// SealEnvelope encrypts plaintext of any size under a fresh KMS data key (GenerateDataKey AES_256) with
// AES-256-GCM and returns the envelope file (format in doc.go).
func SealEnvelope(ctx context.Context, client *kms.Client, keyID string, encCtx map[string]string, plaintext []byte) ([]byte, error) {
	out, err := client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId: &keyID, KeySpec: kmstypes.DataKeySpecAes256, EncryptionContext: encCtx,
	})
	if err != nil {
		return nil, fmt.Errorf("kms generate data key %s: %w", keyID, err)
	}
	defer clear(out.Plaintext)
	hdr := envelopeHeader{Alg: envelopeAlg, KeyID: keyID, Context: encCtx, DataKey: out.CiphertextBlob, Nonce: make([]byte, 12)}
	if out.KeyId != nil {
		hdr.KeyID = *out.KeyId // the key ARN: unambiguous for decrypt
	}
	if _, err := rand.Read(hdr.Nonce); err != nil {
		return nil, fmt.Errorf("envelope nonce: %w", err)
	}
	hj, err := json.Marshal(hdr)
	if err != nil {
		return nil, fmt.Errorf("envelope header: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString(envelopeMagic + envelopeVersion + "\n")
	buf.Write(hj)
	buf.WriteByte('\n')
	aead, err := newGCM(out.Plaintext)
	if err != nil {
		return nil, err
	}
	aad := append([]byte(nil), buf.Bytes()...)
	return aead.Seal(buf.Bytes(), hdr.Nonce, plaintext, aad), nil
}

// envelopeParts is a parsed envelope.
type envelopeParts struct {
	hdr  envelopeHeader
	aad  []byte
	body []byte
}

func parseEnvelope(data []byte) (*envelopeParts, error) {
	rest, ok := bytes.CutPrefix(data, []byte(envelopeMagic))
	if !ok {
		return nil, errors.New("not an envelope")
	}
	ver, rest, ok := bytes.Cut(rest, []byte("\n"))
	if !ok || string(ver) != envelopeVersion {
		return nil, fmt.Errorf("unsupported envelope version (this berth reads v%s)", envelopeVersion)
	}
	hj, body, ok := bytes.Cut(rest, []byte("\n"))
	if !ok || len(hj) > maxEnvelopeHeader {
		return nil, errors.New("corrupt envelope header")
	}
	var hdr envelopeHeader
	if err := json.Unmarshal(hj, &hdr); err != nil {
		return nil, errors.New("corrupt envelope header")
	}
	if hdr.Alg != envelopeAlg || len(hdr.Nonce) != 12 || len(hdr.DataKey) == 0 {
		return nil, fmt.Errorf("unsupported envelope header (alg %q)", hdr.Alg)
	}
	return &envelopeParts{hdr: hdr, aad: data[:len(data)-len(body)], body: body}, nil
}

// decryptKMSBlob decrypts a kms_file or `berth secrets decrypt` input: an envelope or a raw KMS blob. encCtx
// nil means "the context recorded in the envelope" (a raw blob then has none). It returns the plaintext and
// the key id KMS reports; errors are fetch errors for classify, or *Error (78) for a corrupt envelope.
func decryptKMSBlob(ctx context.Context, client *kms.Client, data []byte, encCtx map[string]string) ([]byte, string, error) {
	if !IsEnvelope(data) {
		out, err := client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: data, EncryptionContext: encCtx})
		if err != nil {
			return nil, "", err
		}
		return out.Plaintext, deref(out.KeyId), nil
	}
	env, err := parseEnvelope(data)
	if err != nil {
		return nil, "", &Error{Code: ExitConfig, Err: err}
	}
	if encCtx == nil {
		encCtx = env.hdr.Context
	}
	out, err := client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: env.hdr.DataKey, EncryptionContext: encCtx})
	if err != nil {
		return nil, "", err
	}
	defer clear(out.Plaintext)
	aead, err := newGCM(out.Plaintext)
	if err != nil {
		return nil, "", &Error{Code: ExitConfig, Err: err}
	}
	pt, err := aead.Open(nil, env.hdr.Nonce, env.body, env.aad)
	if err != nil {
		return nil, "", &Error{Code: ExitConfig, Err: errors.New("envelope authentication failed (file corrupt or edited)")}
	}
	return pt, deref(out.KeyId), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("kms returned a %d-byte data key, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return aead, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
