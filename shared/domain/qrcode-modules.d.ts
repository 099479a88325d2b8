// The two internal modules of `qrcode` that shared/domain/totp.ts uses (its types cover the entry point only).
declare module 'qrcode/lib/core/qrcode.js' {
  export interface QrData {
    readonly modules: unknown;
  }
  export function create(text: string, options?: { errorCorrectionLevel?: 'L' | 'M' | 'Q' | 'H' }): QrData;
}
declare module 'qrcode/lib/renderer/svg-tag.js' {
  import type { QrData } from 'qrcode/lib/core/qrcode.js';
  export function render(
    qrData: QrData,
    options: { margin?: number; width?: number },
    callback: (error: Error | null, svg: string) => void,
  ): string;
}
