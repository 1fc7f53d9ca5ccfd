import Foundation
import Glibc

/// Crash points for the crash-recovery tests: when ASSETD_FAULT names a point, the process
/// kills itself there with SIGKILL, exactly as `kill -9` at that moment would. Unset (as in
/// production) it costs one load of a constant.
enum Faults {
    private static let armed: String? = ProcessInfo.processInfo.environment["ASSETD_FAULT"].flatMap { $0.isEmpty ? nil : $0 }

    static func point(_ name: StaticString) {
        guard let armed, armed == name.description else { return }
        FileHandle.standardError.write(Data("assetd: ASSETD_FAULT=\(armed): killing the process here\n".utf8))
        kill(getpid(), SIGKILL)
    }
}
