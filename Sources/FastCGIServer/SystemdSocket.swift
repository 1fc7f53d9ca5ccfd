// SOCK_CLOEXEC's declaration comes through CFastCGI's headers (sys/socket.h).
internal import CFastCGI
import Foundation
import Glibc

/// systemd's socket activation (sd_listen_fds(3)) and readiness protocol (sd_notify(3)),
/// spoken directly: both are a few lines, so assetd needs no libsystemd.
public enum Systemd {
    /// The first descriptor systemd passes: SD_LISTEN_FDS_START.
    static let listenFDsStart: Int32 = 3

    /// The sockets systemd passed to this process: LISTEN_FDS descriptors from fd 3, when
    /// LISTEN_PID names this process (a variable inherited from a parent names another).
    /// The variables are removed, as sd_listen_fds(1) does, so no child takes them too.
    public static func listenDescriptors() -> [Int32] {
        listenDescriptors(environment: ProcessInfo.processInfo.environment)
    }

    static func listenDescriptors(environment: [String: String]) -> [Int32] {
        defer {
            unsetenv("LISTEN_PID")
            unsetenv("LISTEN_FDS")
            unsetenv("LISTEN_FDNAMES")
        }
        guard let pid = environment["LISTEN_PID"].flatMap({ pid_t($0) }), pid == getpid(),
              let count = environment["LISTEN_FDS"].flatMap({ Int32($0) }), (1...64).contains(count)
        else { return [] }
        return (0..<count).map { offset in
            let descriptor = listenFDsStart + offset
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            return descriptor
        }
    }

    /// Sends `state` ("READY=1", "STOPPING=1", "STATUS=...") to the service manager, as one
    /// datagram to $NOTIFY_SOCKET (a path, or `@name` in the abstract namespace). Returns
    /// false when there is no manager to tell or the datagram could not be sent.
    @discardableResult
    public static func notify(_ state: String) -> Bool {
        guard let socketPath = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"],
              socketPath.hasPrefix("/") || socketPath.hasPrefix("@")
        else { return false }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        if path[0] == UInt8(ascii: "@") { path[0] = 0 }
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path) }
        // A path is NUL-terminated (the zeroed tail); an abstract name is exactly its bytes.
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + path.count + (path[0] == 0 ? 0 : 1))

        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let message = Array(state.utf8)
        let sent = message.withUnsafeBytes { bytes in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), $0, length)
                }
            }
        }
        return sent == message.count
    }
}
