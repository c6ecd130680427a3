export const PACKAGE_NAME = '@codefeedr/registry';
