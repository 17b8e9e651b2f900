#!/usr/bin/env python3
"""Generate a throw-away CA + certs for notary-server TLS, notary-signer gRPC mTLS and a token issuer.
usage: gen-certs.py OUTDIR"""
import sys, os, datetime, ipaddress
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID as EKU
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
out = sys.argv[1]; os.makedirs(out, exist_ok=True); now = datetime.datetime.utcnow()
def save(name, key, cert):
    open(f"{out}/{name}.key", "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    open(f"{out}/{name}.crt", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
cak = ec.generate_private_key(ec.SECP256R1()); can = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
ca = (x509.CertificateBuilder().subject_name(can).issuer_name(can).public_key(cak.public_key()).serial_number(1)
      .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=365))
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(cak, hashes.SHA256()))
save("ca", cak, ca)
def leaf(name, cn, sans, ekus):
    k = ec.generate_private_key(ec.SECP256R1())
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])).issuer_name(can)
         .public_key(k.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=365))
         .add_extension(x509.ExtendedKeyUsage(ekus), critical=False))
    if sans: b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    save(name, k, b.sign(cak, hashes.SHA256()))
local = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
leaf("server", "notary-server", local, [EKU.SERVER_AUTH, EKU.CLIENT_AUTH])   # HTTPS + client cert towards the signer
leaf("signer", "notary-signer", local, [EKU.SERVER_AUTH])
leaf("token", "token-issuer", None, [EKU.CLIENT_AUTH])                       # signs registry-token JWTs
open(f"{out}/tokenbundle.pem", "wb").write(open(f"{out}/ca.crt", "rb").read() + open(f"{out}/token.crt", "rb").read())
