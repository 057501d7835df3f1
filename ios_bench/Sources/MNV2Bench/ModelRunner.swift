import CoreML
import CoreVideo
import Foundation

/// Compiles a .mlpackage once, then loads and runs it for one compute-unit setting.
/// The input is made from the model's own description (an image buffer or a float array), so nothing about
/// the preprocessing is repeated here: timing does not depend on pixel values.
public final class ModelRunner {
    public let compiledURL: URL
    public let computeUnits: MLComputeUnits
    public private(set) var model: MLModel?
    private var input: MLFeatureProvider?

    public static func computeUnits(named name: String) throws -> MLComputeUnits {
        switch name {
        case "cpuOnly": return .cpuOnly
        case "cpuAndGPU": return .cpuAndGPU
        case "all": return .all
        default: throw BenchError.badConfig("unknown compute units \(name)")
        }
    }

    /// Compiling is not part of any measurement (Xcode compiles bundled models at build time in a real app).
    public static func compile(modelAt path: String) throws -> URL {
        let url = URL(fileURLWithPath: path)
        if url.pathExtension == "mlmodelc" {
            return url
        }
        return try MLModel.compileModel(at: url)
    }

    public init(compiledURL: URL, computeUnitsName: String) throws {
        self.compiledURL = compiledURL
        self.computeUnits = try ModelRunner.computeUnits(named: computeUnitsName)
    }

    /// One model load: what XCTest measures in the load test.
    @discardableResult
    public func load() throws -> MLModel {
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits
        let loaded = try MLModel(contentsOf: compiledURL, configuration: configuration)
        model = loaded
        return loaded
    }

    /// One prediction on a fixed input: what XCTest measures in the prediction test.
    @discardableResult
    public func predict() throws -> MLFeatureProvider {
        guard let model = model else {
            throw BenchError.badModel("predict() before load()")
        }
        if input == nil {
            input = try ModelRunner.makeInput(for: model.modelDescription)
        }
        return try model.prediction(from: input!)
    }

    static func makeInput(for description: MLModelDescription) throws -> MLFeatureProvider {
        var features: [String: MLFeatureValue] = [:]
        for (name, feature) in description.inputDescriptionsByName {
            switch feature.type {
            case .image:
                guard let constraint = feature.imageConstraint else {
                    throw BenchError.badModel("image input \(name) has no size constraint")
                }
                let pixels = try grayPixelBuffer(width: constraint.pixelsWide, height: constraint.pixelsHigh)
                features[name] = MLFeatureValue(pixelBuffer: pixels)
            case .multiArray:
                guard let constraint = feature.multiArrayConstraint else {
                    throw BenchError.badModel("array input \(name) has no shape constraint")
                }
                let array = try MLMultiArray(shape: constraint.shape, dataType: .float32)
                for i in 0..<array.count {
                    array[i] = 0
                }
                features[name] = MLFeatureValue(multiArray: array)
            default:
                throw BenchError.badModel("input \(name) has unsupported type \(feature.type.rawValue)")
            }
        }
        return try MLDictionaryFeatureProvider(dictionary: features)
    }

    static func grayPixelBuffer(width: Int, height: Int) throws -> CVPixelBuffer {
        var buffer: CVPixelBuffer?
        let attributes = [kCVPixelBufferIOSurfacePropertiesKey as String: [String: Any]()] as CFDictionary
        let status = CVPixelBufferCreate(kCFAllocatorDefault, width, height, kCVPixelFormatType_32BGRA,
                                         attributes, &buffer)
        guard status == kCVReturnSuccess, let pixels = buffer else {
            throw BenchError.badModel("CVPixelBufferCreate failed with status \(status)")
        }
        CVPixelBufferLockBaseAddress(pixels, [])
        if let base = CVPixelBufferGetBaseAddress(pixels) {
            memset(base, 128, CVPixelBufferGetDataSize(pixels))
        }
        CVPixelBufferUnlockBaseAddress(pixels, [])
        return pixels
    }
}
