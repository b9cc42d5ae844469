#!/usr/bin/env bash
# Installs the LLVM that burn's CUDA backend links, for machines that cannot reach GitHub:
#   tools/llvm-bundle.sh
#   cargo build --release -p arena-detector --features cuda      (with tools/cuda-toolchain.sh's env)
#
# cubecl-cuda 0.11 compiles kernels through cubecl-llvm, which links LLVM 23.1 statically. Its
# build dependency tracel-llvm-bundler downloads a prebuilt LLVM from GitHub releases into
# $XDG_DATA_HOME/tracel/tracel-llvm-23.1.0-4 (default ~/.local/share), and skips the download
# when that directory holds its `.tracel-llvm-installed` marker. This script fills the same
# directory from Debian's own LLVM 23.1 packages (unstable), so the build links a real LLVM 23.1:
# - deb.debian.org's InRelease is checked with the Debian archive keyring, the Packages index
#   against InRelease, and every .deb against the index (SHA-256 all the way down);
# - lib/ and include/ are llvm-23-dev's static libraries (with Polly's, which Debian links into
#   LLVM) and headers;
# - bin/llvm-config is Debian's, run with the glibc it was built for (copied into sysroot/);
#   a small wrapper turns the absolute library paths it prints into `-l` names, which is the
#   form tracel-llvm-bundler's link step understands;
# - Debian's LLVM was compiled against glibc >= 2.38, which renamed strtol and friends to
#   __isoc23_* (C23 lets them read a 0b prefix). On an older glibc, lib/ gets a small archive
#   that provides those four functions with C23's rules, and llvm-config names it.
set -euo pipefail

bundle_version="23.1.0-4"   # the tracel-llvm-bundler release that cubecl-llvm 0.11.3 pins
llvm_major=23
prefix="${1:-${XDG_DATA_HOME:-$HOME/.local/share}/tracel/tracel-llvm-$bundle_version}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=sid
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

need=()
command -v patchelf >/dev/null || need+=(patchelf)
command -v gpgv >/dev/null || need+=(gpgv)
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
# What Debian's llvm-config lists as system libraries, for linking (only what is used stays).
for lib in z zstd xml2 z3; do
  [ -e "/usr/lib/x86_64-linux-gnu/lib$lib.so" ] || need+=("$(case $lib in z) echo zlib1g-dev;; zstd) echo libzstd-dev;; xml2) echo libxml2-dev;; z3) echo libz3-dev;; esac)")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi

echo "Debian $suite: verifying the archive index"
curl -fsS -o "$work/InRelease" "$mirror/dists/$suite/InRelease"
gpgv --keyring /usr/share/keyrings/debian-archive-keyring.gpg --output "$work/Release" "$work/InRelease" 2>/dev/null
index=main/binary-amd64/Packages.xz
curl -fsS -o "$work/Packages.xz" "$mirror/dists/$suite/$index"
want=$(awk -v f="$index" '/^SHA256:/{s=1; next} /^[^ ]/{s=0} s && $3==f {print $1}' "$work/Release")
got=$(sha256sum "$work/Packages.xz" | cut -d' ' -f1)
[ -n "$want" ] && [ "$want" = "$got" ] || { echo "Packages index checksum mismatch ($got, want $want)" >&2; exit 1; }
xz -dc "$work/Packages.xz" > "$work/Packages"

# Debian's LLVM, and the runtime that its llvm-config binary needs.
packages=(llvm-$llvm_major-dev llvm-$llvm_major libpolly-$llvm_major-dev
  libc6 libstdc++6 libgcc-s1 zlib1g libzstd1 libz3-4 libffi8 libedit2 libbsd0 libmd0 libtinfo6)
for p in "${packages[@]}"; do
  file=""; read -r file sum version < <(awk -v p="$p" '
    /^Package: /{cur=$2} cur==p && /^Version: /{v=$2} cur==p && /^Filename: /{f=$2}
    cur==p && /^SHA256: /{s=$2} /^$/{if (cur==p && f!="") {print f, s, v; exit}}' "$work/Packages") || true
  [ -n "${file:-}" ] || { echo "package $p is not in Debian $suite" >&2; exit 1; }
  case $p in llvm-$llvm_major*) llvm_version=$version;; esac
  curl -fsS -o "$work/$p.deb" "$mirror/$file"
  [ "$(sha256sum "$work/$p.deb" | cut -d' ' -f1)" = "$sum" ] || { echo "$file: checksum mismatch" >&2; exit 1; }
  case $p in
    llvm-*|libpolly-*) dpkg-deb -x "$work/$p.deb" "$work/llvm" ;;
    *) dpkg-deb -x "$work/$p.deb" "$work/runtime" ;;
  esac
done
case $llvm_version in
  *:$llvm_major.1.*) ;;
  *) echo "Debian $suite has LLVM $llvm_version; cubecl-llvm needs $llvm_major.1" >&2; exit 1 ;;
esac

rm -rf "$prefix"
mkdir -p "$prefix/bin" "$prefix/lib" "$prefix/sysroot"
src="$work/llvm/usr/lib/llvm-$llvm_major"
cp -L "$src"/lib/libLLVM*.a "$src"/lib/libPolly*.a "$prefix/lib/"
cp -rL "$src/include" "$prefix/include"
cp -L "$work"/runtime/usr/lib/x86_64-linux-gnu/*.so.* "$work"/runtime/usr/lib/x86_64-linux-gnu/*.so "$prefix/sysroot/" 2>/dev/null || true
cp -L "$work/runtime/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$prefix/sysroot/"
cp -L "$src/bin/llvm-config" "$prefix/bin/llvm-config.debian"
patchelf --set-interpreter "$prefix/sysroot/ld-linux-x86-64.so.2" --set-rpath "$prefix/sysroot" \
  "$prefix/bin/llvm-config.debian"

extra=""
if ! nm -D --defined-only "$(gcc -print-file-name=libc.so.6)" | grep -q ' __isoc23_strtol@'; then
  cat > "$work/isoc23.c" <<'EOF'
/* C23's strtol family (glibc >= 2.38 names them __isoc23_*): as before, and with base 0 or 2
   a "0b"/"0B" prefix followed by a binary digit introduces a binary number. For linking code
   built against a newer glibc on an older one. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* The binary digits after a 0b prefix, or NULL when the C17 rules apply unchanged. */
static const char *binary_digits(const char *s, int base, char *sign) {
  while (isspace((unsigned char)*s)) s++;
  *sign = '+';
  if (*s == '+' || *s == '-') *sign = *s++;
  if ((base == 0 || base == 2) && s[0] == '0' && (s[1] == 'b' || s[1] == 'B') &&
      (s[2] == '0' || s[2] == '1'))
    return s + 2;
  return NULL;
}

#define C23_PARSER(name, type, parse)                                   \
  type name(const char *s, char **end, int base) {                      \
    char sign;                                                          \
    const char *digits = binary_digits(s, base, &sign);                 \
    if (digits == NULL) return parse(s, end, base);                     \
    size_t n = strspn(digits, "01");                                    \
    char *buf = malloc(n + 2);                                          \
    if (buf == NULL) return parse(s, end, base);                        \
    buf[0] = sign;                                                      \
    memcpy(buf + 1, digits, n);                                         \
    buf[n + 1] = '\0';                                                  \
    type value = parse(buf, NULL, 2); /* sets ERANGE as parse does */   \
    free(buf);                                                          \
    if (end != NULL) *end = (char *)(digits + n);                       \
    return value;                                                       \
  }

C23_PARSER(__isoc23_strtol, long, strtol)
C23_PARSER(__isoc23_strtoll, long long, strtoll)
C23_PARSER(__isoc23_strtoul, unsigned long, strtoul)
C23_PARSER(__isoc23_strtoull, unsigned long long, strtoull)
EOF
  gcc -O2 -fPIC -c "$work/isoc23.c" -o "$work/isoc23.o"
  cat > "$work/isoc23_check.c" <<'EOF'
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
long __isoc23_strtol(const char *, char **, int);
unsigned long long __isoc23_strtoull(const char *, char **, int);
static int bad = 0;
static void check(const char *s, int base, long want, size_t used, int want_errno) {
  char *end;
  errno = 0;
  long got = __isoc23_strtol(s, &end, base);
  if (got != want || (size_t)(end - s) != used || errno != want_errno) {
    fprintf(stderr, "__isoc23_strtol(\"%s\", %d) = %ld, %zu read, errno %d\n", s, base, got,
            (size_t)(end - s), errno);
    bad = 1;
  }
}
int main(void) {
  check("0b101", 0, 5, 5, 0);
  check(" -0B11z", 2, -3, 6, 0);
  check("0b2", 0, 0, 1, 0);
  check("0x1f", 0, 31, 4, 0);
  check("017", 0, 15, 3, 0);
  check("0b101", 16, 0xb101, 5, 0);
  check("+0b0", 0, 0, 4, 0);
  char big[80] = "0b";
  memset(big + 2, '1', 70);
  big[72] = '\0';
  check(big, 0, LONG_MAX, 72, ERANGE);
  if (__isoc23_strtoull("0b1111", NULL, 0) != 15) { fprintf(stderr, "__isoc23_strtoull\n"); bad = 1; }
  return bad;
}
EOF
  gcc -O2 "$work/isoc23_check.c" "$work/isoc23.o" -o "$work/isoc23_check"
  "$work/isoc23_check" || { echo "the __isoc23_* replacements do not follow C23" >&2; exit 1; }
  ar rcs "$prefix/lib/libarena_isoc23.a" "$work/isoc23.o"
  extra=" -larena_isoc23"
fi

cat > "$prefix/bin/llvm-config" <<EOF
#!/bin/sh
# Debian's llvm-config (LLVM $llvm_version), with absolute library paths printed as -l names.
out=\$("\$(dirname "\$0")/llvm-config.debian" "\$@") || exit \$?
case " \$* " in
  *" --system-libs "*) out="\$(printf '%s\n' "\$out" | sed -E 's#(^| )/[^ ]*/lib([^/ ]+)\.(so|a)#\1-l\2#g')$extra" ;;
esac
printf '%s\n' "\$out"
EOF
chmod +x "$prefix/bin/llvm-config"
touch "$prefix/.tracel-llvm-installed"

"$prefix/bin/llvm-config" --version
echo "LLVM $llvm_version (Debian $suite) in $prefix"
echo "system libraries: $("$prefix/bin/llvm-config" --link-static --system-libs)"
