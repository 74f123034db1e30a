/** The admin API's service definition, from the admin.proto shipped with the package. */
import type { ServiceClientConstructor } from '@grpc/grpc-js'
import { packageFile } from '../../config/package-files'
import { loadProtoService } from '../../spiffe/grpc-proto'

export const AdminService = (): ServiceClientConstructor => loadProtoService(packageFile('agent/admin/admin.proto'), 'chaperone.admin.v1.Admin')

/** gRPC metadata key carrying our stable error code next to the status, so clients can rebuild a ChaperoneError. */
export const ERROR_CODE_METADATA = 'chaperone-error-code'
