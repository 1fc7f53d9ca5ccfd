import CSystem
import Testing

/// Every executable linking CSystem (assetd, assetd-thumbnailer, this test binary) tells
/// libcrypto before main to register no atexit cleanup: OPENSSL_cleanup at exit freed the
/// locks that threads still hashing took (SIGSEGV in libcrypto at a stop, and after a test
/// run had passed). The call is libcrypto's first initialisation (gdb: the constructor's
/// OPENSSL_init_crypto with 0x80000 comes first), so NO_ATEXIT takes effect.
struct OpenSSLAtExitTests {
    @Test func libcryptoWasToldBeforeMainToRegisterNoAtExitCleanup() {
        #expect(assetd_system_openssl_atexit_off() == 1)
    }
}
