import Foundation

/// The harness's own record of a run, written as JSON beside XCTest's metrics (which stay the primary source:
/// `xcrun xcresulttool get test-results metrics`). Times are milliseconds from a monotonic clock.
public struct BenchRecord: Codable {
    public var model: String
    public var computeUnits: String
    public var phase: String  // "load" or "predict"
    public var warmup: Int
    public var samplesMs: [Double]
    public var device: String
    public var osVersion: String

    public init(model: String, computeUnits: String, phase: String, warmup: Int, samplesMs: [Double]) {
        self.model = model
        self.computeUnits = computeUnits
        self.phase = phase
        self.warmup = warmup
        self.samplesMs = samplesMs
        self.device = BenchRecord.machineIdentifier()
        self.osVersion = ProcessInfo.processInfo.operatingSystemVersionString
    }

    /// e.g. "iPhone16,1"; the marketing name is not available to apps.
    static func machineIdentifier() -> String {
        var info = utsname()
        uname(&info)
        let mirror = Mirror(reflecting: info.machine)
        return mirror.children.compactMap { $0.value as? Int8 }
            .filter { $0 != 0 }
            .map { String(UnicodeScalar(UInt8(bitPattern: $0))) }
            .joined()
    }
}

/// Milliseconds elapsed while running `body`, on the monotonic clock.
public func elapsedMilliseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1_000_000.0
}

/// Appends records to one JSON array file in the temporary directory and returns its URL.
public func writeRecords(_ records: [BenchRecord], named name: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(name)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(records).write(to: url, options: .atomic)
    return url
}
