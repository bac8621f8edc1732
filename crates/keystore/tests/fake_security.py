#!@PYTHON@
# A fake /usr/bin/security for tests: a tiny stateful "keychain" in a JSON file.
# Every invocation appends {"argv": [...], "stdin": bool, ...} to log.jsonl.
# fail.json maps a subcommand to {"rc": n, "stderr": "...", "stdout": "..."} to script failures
# with the real tool's messages. The PKCS#12 is opened with the real openssl CLI (password via
# the environment), so the test also proves that the file and the one-time password work.
import base64, hashlib, json, os, shlex, stat, subprocess, sys

STATE_DIR = "@STATE_DIR@"
STATE = os.path.join(STATE_DIR, "state.json")
LOG = os.path.join(STATE_DIR, "log.jsonl")
FAIL = os.path.join(STATE_DIR, "fail.json")
OPENSSL = "@OPENSSL@"
NOT_FOUND = "security: SecKeychainSearchCopyNext: The specified item could not be found in the keychain."

argv = sys.argv[1:]
data = sys.stdin.buffer.read()
entry = {"argv": argv, "stdin": len(data) > 0}

def load():
    if os.path.exists(STATE):
        with open(STATE) as f:
            return json.load(f)
    return {"certs": [], "identities": [], "labels": {}, "trusted": [], "passwords": {}}

def save(st):
    with open(STATE, "w") as f:
        json.dump(st, f)

def log():
    with open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")

def der_of(pem):
    body = "".join(l for l in pem.strip().splitlines() if not l.startswith("-----"))
    return base64.b64decode(body)

def pem_of(der):
    b = base64.b64encode(der).decode()
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(b[i:i + 64] for i in range(0, len(b), 64)) + "\n-----END CERTIFICATE-----\n"

def sha1(pem):
    return hashlib.sha1(der_of(pem)).hexdigest().upper()

def opt(args, name):
    return args[args.index(name) + 1] if name in args else None

def finish(rc=0, out="", err=""):
    log()
    sys.stdout.write(out)
    sys.stderr.write(err)
    sys.exit(rc)

sub = argv[0] if argv else ""
if os.path.exists(FAIL):
    with open(FAIL) as f:
        fail = json.load(f)
    if sub in fail:
        finish(fail[sub].get("rc", 1), fail[sub].get("stdout", ""), fail[sub].get("stderr", ""))

st = load()

if sub == "import":
    path = argv[1]
    entry["file_mode"] = oct(stat.S_IMODE(os.stat(path).st_mode))
    entry["dir_mode"] = oct(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode))
    env = {"FAKEPW": opt(argv, "-P") or ""}
    certs = subprocess.run([OPENSSL, "pkcs12", "-in", path, "-nokeys", "-passin", "env:FAKEPW"],
                           capture_output=True, text=True, env=env)
    keys = subprocess.run([OPENSSL, "pkcs12", "-in", path, "-nocerts", "-nodes", "-passin", "env:FAKEPW"],
                          capture_output=True, text=True, env=env)
    if certs.returncode != 0 or "PRIVATE KEY" not in keys.stdout:
        finish(1, err="security: SecKeychainItemImport: MAC verification failed during PKCS12 import (wrong password?)\n")
    leaf = None
    for chunk in certs.stdout.split("Bag Attributes")[1:]:
        begin = chunk.find("-----BEGIN CERTIFICATE-----")
        end = chunk.find("-----END CERTIFICATE-----")
        pem = chunk[begin:end + 25] + "\n"
        if pem not in st["certs"]:
            st["certs"].append(pem)
        if "localKeyID" in chunk:
            leaf = pem
            label = [l.split(":", 1)[1].strip() for l in chunk.splitlines() if "friendlyName" in l]
            st["labels"][sha1(pem)] = label[0] if label else "?"
    if leaf is None:
        finish(1, err="fake security: no certificate carries the key's localKeyID\n")
    if sha1(leaf) in st["identities"]:
        finish(1, err="security: SecKeychainItemImport: The specified item already exists in the keychain.\n")
    st["identities"].append(sha1(leaf))
    save(st)
    finish(out="1 identity imported.\n")

if sub == "find-identity":
    lines = ["Policy: SSL (client)", "  Matching identities"]
    for i, h in enumerate(st["identities"], 1):
        lines.append('  %d) %s "%s"' % (i, h, st["labels"].get(h, "?")))
    lines.append("     %d valid identities found" % len(st["identities"]))
    finish(out="\n".join(lines) + "\n")

if sub == "find-certificate":
    out = ""
    for pem in st["certs"]:
        out += "SHA-256 hash: %s\nSHA-1 hash: %s\n%s" % (
            hashlib.sha256(der_of(pem)).hexdigest().upper(), sha1(pem), pem)
    finish(out=out)

if sub == "delete-identity":
    h = opt(argv, "-Z")
    if h not in st["identities"]:
        finish(44, err=NOT_FOUND + "\n")
    st["identities"].remove(h)
    st["certs"] = [c for c in st["certs"] if sha1(c) != h]
    save(st)
    finish()

if sub == "add-trusted-cert":
    with open(argv[-1], "rb") as f:
        pem = pem_of(f.read())
    if pem not in st["certs"]:
        st["certs"].append(pem)
    st["trusted"].append(sha1(pem))
    save(st)
    finish()

if sub == "remove-trusted-cert":
    with open(argv[-1], "rb") as f:
        h = sha1(pem_of(f.read()))
    if h not in st["trusted"]:
        finish(1, err="SecTrustSettingsRemoveTrustSettings: No Trust Settings were found.\n")
    st["trusted"].remove(h)
    save(st)
    finish()

if sub == "delete-certificate":
    h = opt(argv, "-Z")
    if not any(sha1(c) == h for c in st["certs"]):
        finish(44, err=NOT_FOUND + "\n")
    st["certs"] = [c for c in st["certs"] if sha1(c) != h]
    save(st)
    finish()

if sub == "-i":
    entry["commands"] = []
    for line in data.decode().splitlines():
        words = shlex.split(line)
        if not words:
            continue
        # Logged without the -w value: the log must not become the leak.
        entry["commands"].append([w for i, w in enumerate(words) if i == 0 or words[i - 1] != "-w"])
        if words[0] == "add-generic-password":
            st["passwords"][opt(words, "-s") + "/" + opt(words, "-a")] = opt(words, "-w")
    save(st)
    finish()

if sub == "find-generic-password":
    key = opt(argv, "-s") + "/" + opt(argv, "-a")
    if key not in st["passwords"]:
        finish(44, err=NOT_FOUND + "\n")
    finish(out=st["passwords"][key] + "\n")

if sub == "delete-generic-password":
    key = opt(argv, "-s") + "/" + opt(argv, "-a")
    if key not in st["passwords"]:
        finish(44, err=NOT_FOUND + "\n")
    del st["passwords"][key]
    save(st)
    finish()

finish(2, err="fake security: unknown command %r\n" % sub)
